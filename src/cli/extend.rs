//! `hptune extend`: cross-validated training of a study's top configurations (stage 2).

use std::path::PathBuf;

use anyhow::bail;

use crate::cv::Scheme;
use crate::model::Device;
use crate::stages::extend::{self, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Study whose top trials to train (default: the newest study).
    #[arg(long)]
    pub study: Option<String>,
    /// How many of the study's best finished trials to train.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 3)]
    pub top_n: usize,
    /// Most epochs per fold (early stopping after 10 epochs without a better validation loss).
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 150)]
    pub epochs: usize,
    /// Number of folds (with cpcv: of groups).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// walk-forward: expanding training window, validation after it; purged-kfold: every block
    /// validates once, with label-overlapping samples purged and an embargo after the block;
    /// cpcv: every choice of --test-groups of the --folds groups validates once, purged and
    /// embargoed the same way, and the splits are rebuilt into C(folds-1, test-groups-1) paths.
    #[arg(long, value_enum, default_value_t = Scheme::WalkForward)]
    pub scheme: Scheme,
    /// Groups each cpcv split validates (cpcv only; default 2).
    #[arg(long, value_name = "K")]
    pub test_groups: Option<usize>,
    /// Trading days dropped from training right after each validation block (purged-kfold, cpcv).
    #[arg(long, default_value_t = 5, value_name = "DAYS")]
    pub embargo: usize,
    /// Seed of every fold's weights, shuffles and dropout.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Folds trained at once in this process (one thread each).
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 1)]
    pub jobs: usize,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Output folder (an earlier run's is moved aside with a timestamp).
    #[arg(long, default_value = crate::layout::EXTENDED_DIR)]
    pub out: PathBuf,
    /// Finish an interrupted or failed extended run (its finished folds are kept).
    #[arg(long, value_name = "EXTENDED_RUN_ID")]
    pub resume: Option<String>,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database_folder(&args.out, store.path(), "--out")?;
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let request = Request {
        study: args.study,
        top_n: args.top_n,
        epochs: args.epochs,
        folds: args.folds,
        scheme: args.scheme,
        test_groups: super::test_groups(args.scheme, args.test_groups)?,
        embargo: args.embargo,
        seed: args.seed,
        jobs: args.jobs,
        device: args.device,
        out_dir: args.out.clone(),
        resume: args.resume,
    };
    let outcome = extend::run(store, &request)?;
    if let Some(old) = &outcome.moved_aside {
        println!("kept the previous {} as {}", args.out.display(), old.display());
    }
    let run = store.extended_run(&outcome.extended_run_id)?;
    println!(
        "extended run {} ({} x {}, study {}): {}",
        run.extended_run_id,
        run.top_n,
        run.cv().describe(),
        run.study_name,
        run.status
    );
    store.cv_comparison(&run.extended_run_id, |schema, batches| {
        crate::output::write(crate::output::Format::Table, schema, batches, &mut std::io::stdout().lock())
    })?;
    println!(
        "wrote {}/: extended_training_results.json, extended_model_<rank>/ (config.json, fold_<k>/model.safetensors)",
        args.out.display()
    );
    println!("next: hptune analyze");
    Ok(())
}
