//! `hptune pipeline`: tune, extend, analyze, train and backtest in one command, with quick
//! defaults; and `hptune check`, the checklist of every stage.

use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::backtest::Mode;
use crate::cv::Scheme;
use crate::data::SHIPPED;
use crate::model::Device;
use crate::split::DEFAULT_HOLDOUT;
use crate::stages::check;
use crate::stages::pipeline::{self, Request};
use crate::stages::{analyze, backtest, extend, tune};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset to run on.
    #[arg(long, default_value = SHIPPED[0].name)]
    pub dataset: String,
    /// Study name (an existing study is resumed). Default: a new study named after the time.
    #[arg(long)]
    pub study: Option<String>,
    /// Tuning trials.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 8)]
    pub trials: usize,
    /// Trials (and folds) run at once, one thread each.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 2)]
    pub jobs: usize,
    /// Most epochs per tuning trial.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 4)]
    pub epochs: usize,
    /// Configurations trained on every fold.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 2)]
    pub top_n: usize,
    #[arg(long, default_value_t = 3)]
    pub folds: usize,
    #[arg(long, value_enum, default_value_t = Scheme::WalkForward)]
    pub scheme: Scheme,
    /// Groups each cpcv split validates (cpcv only; default 2).
    #[arg(long, value_name = "K")]
    pub test_groups: Option<usize>,
    #[arg(long, default_value_t = 5, value_name = "DAYS")]
    pub embargo: usize,
    /// Most epochs per fold.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 8)]
    pub extend_epochs: usize,
    /// Most epochs of the final training.
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 15)]
    pub final_epochs: usize,
    /// Seed of every stage.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of the latest dates kept out of every stage but the backtest.
    #[arg(long, allow_negative_numbers = true, value_parser = super::holdout_share, default_value_t = DEFAULT_HOLDOUT)]
    pub holdout: f64,
    /// Sampler of the Bayesian and fine-tuning phases (new studies): tpe, gp (Gaussian process), or
    /// auto (gp for spaces of at most 16 parameters with no categorical of more than 8 choices).
    #[arg(long, value_parser = super::sampler(), default_value = "auto")]
    pub sampler: crate::search::Sampler,
    /// Search space (TOML) replacing the default.
    #[arg(long)]
    pub space: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Mode::LongFlat)]
    pub mode: Mode,
    #[arg(long, allow_negative_numbers = true, value_parser = super::basis_points, default_value_t = 10.0)]
    pub commission_bps: f64,
    #[arg(long, allow_negative_numbers = true, value_parser = super::basis_points, default_value_t = 5.0)]
    pub slippage_bps: f64,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Folder the stages write their outputs under (earlier outputs are moved aside).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Tune on a PostgreSQL study server shared with other workers (`hptune tune --storage`), then
    /// pull the study and run the later stages here.
    #[arg(long, env = "HPTUNE_STORAGE", value_parser = super::StorageUrl)]
    pub storage: Option<String>,
    /// With --storage: seconds between heartbeats of this worker's trials; a trial without one
    /// for 6 intervals (its worker died) is failed and queued again by the next worker.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 20)]
    pub heartbeat_interval: usize,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database(&args.out, store.path(), "--out")?;
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let space_toml = match &args.space {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| format!("cannot read --space {}", path.display()))?)
        }
        None => None,
    };
    let out = &args.out;
    let request = Request {
        tune: tune::Request {
            study: args.study,
            dataset: args.dataset,
            trials: args.trials,
            phases: [None, None, None],
            jobs: args.jobs,
            seed: args.seed,
            epochs: args.epochs,
            holdout: args.holdout,
            pruning: true,
            sampler: args.sampler,
            space_toml,
            device: args.device,
            out_dir: out.join(crate::layout::TUNING_DIR),
            storage: args.storage.clone(),
            heartbeat_s: args.heartbeat_interval as u64,
            warm_start: None,
        },
        extend: extend::Request {
            study: None,
            top_n: args.top_n,
            epochs: args.extend_epochs,
            folds: args.folds,
            scheme: args.scheme,
            test_groups: super::test_groups(args.scheme, args.test_groups)?,
            embargo: args.embargo,
            seed: args.seed,
            jobs: args.jobs,
            device: args.device,
            out_dir: out.join(crate::layout::EXTENDED_DIR),
            resume: None,
        },
        analyze: analyze::Request {
            extended_run: None,
            out_dir: out.clone(),
            pbo_blocks: crate::stages::verdict::PBO_BLOCKS,
        },
        final_epochs: args.final_epochs,
        final_out: out.join(crate::layout::FINAL_DIR),
        backtest: backtest::Request {
            model_path: None,
            dataset: None,
            start: None,
            end: None,
            include_training: false,
            mode: args.mode,
            threshold: 0.5,
            commission_bps: args.commission_bps,
            slippage_bps: args.slippage_bps,
            initial_cash: 10_000.0,
            out_dir: out.join(crate::layout::BACKTEST_DIR),
        },
    };
    let done = pipeline::run(store, &request)?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["stage", "id", "result", "output", "seconds"]);
    for s in &done {
        table.add_row(vec![
            s.stage.into(),
            s.id.clone(),
            s.result.clone(),
            s.output.clone(),
            format!("{:.0}", s.seconds),
        ]);
    }
    println!("{table}");
    println!("database: {} (`hptune query pipeline_history` compares runs)", store.path().display());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Dataset the first stage would use.
    #[arg(long, default_value = SHIPPED[0].name)]
    pub dataset: String,
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Folder the outputs would go under.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Tune on a PostgreSQL study server shared with other workers (`hptune tune --storage`), then
    /// pull the study and run the later stages here.
    #[arg(long, env = "HPTUNE_STORAGE", value_parser = super::StorageUrl)]
    pub storage: Option<String>,
    /// With --storage: seconds between heartbeats of this worker's trials; a trial without one
    /// for 6 intervals (its worker died) is failed and queued again by the next worker.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = super::at_least_one, default_value_t = 20)]
    pub heartbeat_interval: usize,
}

pub fn check(args: CheckArgs, store: &Store) -> anyhow::Result<()> {
    let list = check::checklist(store, &args.dataset, args.device, &args.out)?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["stage", "check", "status", "detail"]);
    for c in &list {
        table.add_row(vec![c.stage.into(), c.item.clone(), c.status.name().into(), c.detail.clone()]);
    }
    println!("{table}");
    if list.iter().any(|c| c.status == check::Status::Failed) {
        anyhow::bail!("a check failed: see the table above");
    }
    Ok(())
}
