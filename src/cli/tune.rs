//! `hptune tune`: three-phase hyperparameter tuning (stage 1).

use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::data::SHIPPED;
use crate::model::Device;
use crate::split::DEFAULT_HOLDOUT;
use crate::stages::tune::{self, Request};
use crate::states::TrialState;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Study name; an existing study is joined (another worker) or resumed. Default: a new study
    /// named after the time.
    #[arg(long)]
    pub study: Option<String>,
    /// Dataset to tune on (new studies).
    #[arg(long, default_value = SHIPPED[0].name)]
    pub dataset: String,
    /// Finished trials (COMPLETE or PRUNED) to reach. Split 30% random (at most 7), 20%
    /// fine-tuning, the rest Bayesian, unless the phase flags say otherwise.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 30)]
    pub trials: usize,
    #[arg(long)]
    pub random_trials: Option<usize>,
    #[arg(long)]
    pub bayesian_trials: Option<usize>,
    #[arg(long)]
    pub finetune_trials: Option<usize>,
    /// Trials run at once in this process (one thread each).
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 1)]
    pub jobs: usize,
    /// Seed of the sampler and of every trial's training.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Most epochs a trial trains (early stopping and pruning may stop it sooner).
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 20)]
    pub epochs: usize,
    /// Share of the most recent dates no trial sees (kept for the backtest).
    #[arg(long, allow_negative_numbers = true, value_parser = super::holdout_share, default_value_t = DEFAULT_HOLDOUT)]
    pub holdout: f64,
    /// Sampler of the Bayesian and fine-tuning phases (new studies): tpe, gp (Gaussian process), or
    /// auto (gp for spaces of at most 16 parameters with no categorical of more than 8 choices).
    #[arg(long, value_parser = super::sampler(), default_value = "auto")]
    pub sampler: crate::search::Sampler,
    /// Turn off the median pruner.
    #[arg(long)]
    pub no_pruning: bool,
    /// Search space (TOML) replacing the default.
    #[arg(long)]
    pub space: Option<PathBuf>,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Output folder (an earlier study's is moved aside with a timestamp).
    #[arg(long, default_value = crate::layout::TUNING_DIR)]
    pub out: PathBuf,
    /// Keep the study on a PostgreSQL server (postgresql://USER[:PASSWORD]@HOST[:PORT]/DB), in
    /// Optuna's tables, shared by every worker that runs the same command on any machine.
    #[arg(long, env = "HPTUNE_STORAGE", value_parser = super::StorageUrl)]
    pub storage: Option<String>,
    /// With --storage: seconds between heartbeats of this worker's trials; a trial without one
    /// for 6 intervals (its worker died) is failed and queued again by the next worker.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 20)]
    pub heartbeat_interval: usize,
    /// Seed a new study's sampler with the finished trials of study STUDY, or with the trial rows
    /// a reading statement returns ("SELECT * FROM trials WHERE ..."); trials that do not fit
    /// the space are skipped. They count in no --trials budget and no N.
    #[arg(long, value_name = "STUDY|SQL")]
    pub warm_start: Option<String>,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database_folder(&args.out, store.path(), "--out")?;
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    if args.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1");
    }
    let space_toml = match &args.space {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read --space {}", path.display()))?;
            let space =
                crate::search::Space::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            tune::check_space(&space).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Some(text)
        }
        None => None,
    };
    let request = Request {
        study: args.study,
        dataset: args.dataset,
        trials: args.trials,
        phases: [args.random_trials, args.bayesian_trials, args.finetune_trials],
        jobs: args.jobs,
        seed: args.seed,
        epochs: args.epochs,
        holdout: args.holdout,
        pruning: !args.no_pruning,
        sampler: args.sampler,
        space_toml,
        device: args.device,
        out_dir: args.out.clone(),
        storage: args.storage.clone(),
        heartbeat_s: args.heartbeat_interval as u64,
        warm_start: args.warm_start,
    };
    let summary = tune::run(store, &request)?;
    if let Some(seeded) = &summary.warm_start {
        println!("{seeded}");
    }
    if !summary.orphans_failed.is_empty() {
        println!("marked orphaned RUNNING trials {:?} as FAIL (their worker had stopped)", summary.orphans_failed);
    }
    let count = |s: TrialState| summary.trials.iter().filter(|t| t.state == s).count();
    println!(
        "study {}: {} complete, {} pruned, {} failed, {} running elsewhere",
        summary.study,
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Fail),
        count(TrialState::Running)
    );
    let mut best: Vec<_> = summary.trials.iter().filter(|t| t.state == TrialState::Complete).collect();
    best.sort_by(|a, b| b.value.unwrap_or(0.0).total_cmp(&a.value.unwrap_or(0.0)).then(a.number.cmp(&b.number)));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["trial", "phase", "val accuracy", "val loss", "params"]);
    for t in best.iter().take(5) {
        let params: Vec<String> =
            t.params.iter().map(|(k, v)| format!("{k}={}", crate::search::space::display_value(v))).collect();
        table.add_row(vec![
            t.number.to_string(),
            t.phase.to_string(),
            format!("{:.2}%", 100.0 * t.value.unwrap_or(f64::NAN)),
            format!("{:.4}", t.val_loss.unwrap_or(f64::NAN)),
            params.join(" "),
        ]);
    }
    println!("{table}");
    if args.storage.is_some() {
        println!("next: hptune pull --storage URL --study {}", summary.study);
        return Ok(());
    }
    let verdict = crate::stages::verdict::study(store, &summary.study, crate::stages::verdict::PBO_BLOCKS)?;
    for line in verdict.sentences() {
        println!("{line}");
    }
    println!(
        "wrote {}/: trial_results.json, optimization_history.json, optimization_history.png, optimization_study.db, checkpoints/",
        args.out.display()
    );
    println!("next: hptune extend --study {}", summary.study);
    Ok(())
}
