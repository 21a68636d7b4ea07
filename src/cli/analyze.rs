//! `hptune analyze`: select the best configuration with the `best_config` view (stage 3).

use std::path::PathBuf;

use crate::stages::analyze::{self, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Extended run to analyse (default: the newest).
    #[arg(long, value_name = "EXTENDED_RUN_ID")]
    pub extended_run: Option<String>,
    /// Folder for best_config.json and analysis_plots/ (earlier ones are moved aside).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    let outcome = analyze::run(store, &Request { extended_run: args.extended_run, out_dir: args.out.clone() })?;
    for old in &outcome.moved_aside {
        println!("kept the previous one as {}", old.display());
    }
    let s = &outcome.selection;
    store.cv_comparison(&s.extended_run_id, |schema, batches| {
        crate::output::write(crate::output::Format::Table, schema, batches, &mut std::io::stdout().lock())
    })?;
    println!(
        "selected trial {} of study {} ({}): {}",
        s.trial_number, s.study_name, outcome.best.model_type, outcome.best.why
    );
    println!("recorded as {}", s.selection_id);
    let dir = args.out.display();
    println!("wrote {dir}/best_config.json, {dir}/analysis_plots/ (cv_fold_scores.png, tuning_vs_cv.png)");
    println!("next: hptune train");
    Ok(())
}
