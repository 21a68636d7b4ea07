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
    /// Blocks of validation dates for the probability of backtest overfitting (CSCV; even, 2-24).
    #[arg(long, default_value_t = crate::stages::verdict::PBO_BLOCKS, value_parser = super::pbo_blocks)]
    pub pbo_blocks: usize,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database(&args.out, store.path(), "--out")?;
    let request = Request { extended_run: args.extended_run, out_dir: args.out.clone(), pbo_blocks: args.pbo_blocks };
    let outcome = analyze::run(store, &request)?;
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
    for line in outcome.verdict.sentences() {
        println!("{line}");
    }
    for warning in outcome.verdict.warnings() {
        eprintln!("{warning}");
    }
    println!("recorded as {}", s.selection_id);
    let dir = args.out.display();
    println!("wrote {dir}/best_config.json, {dir}/analysis_plots/ (cv_fold_scores.png, tuning_vs_cv.png)");
    println!("next: hptune train");
    Ok(())
}
