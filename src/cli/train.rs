//! `hptune train`: final training of one configuration (stage 4).

use std::path::PathBuf;

use anyhow::bail;

use crate::data::SHIPPED;
use crate::model::Device;
use crate::split::DEFAULT_HOLDOUT;
use crate::stages::train::{self, Request};
use crate::store::{Lineage, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file: the hyperparameters as a JSON object, or a file with a top-level
    /// `config` object (best_config.json). Default: the selection recorded by `hptune analyze`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Maximum epochs (overrides the configuration's `epochs`).
    #[arg(long, allow_negative_numbers = true, value_parser = super::at_least_one)]
    pub epochs: Option<usize>,
    /// Dataset to train on (default: the selection's dataset, or the shipped sp500_20_close).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Seed of every random draw: the same seed gives the same weights and metrics on CPU.
    /// Default: the study's for a selection, else 42.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of the most recent dates reserved for the backtest, never trained on. Default: the
    /// study's for a selection, else 0.2.
    #[arg(long, allow_negative_numbers = true, value_parser = super::holdout_share)]
    pub holdout: Option<f64>,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Output folder (an existing one is moved aside with a timestamp).
    #[arg(long, default_value = crate::layout::FINAL_DIR)]
    pub out: PathBuf,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database_folder(&args.out, store.path(), "--out")?;
    let source = train::resolve_source(store, args.config.as_deref(), args.dataset.as_deref())?;
    if let Lineage::Selection(id) = &source.lineage {
        println!("training {id} ({})", source.config_source);
    }
    let mut config = source.config;
    if let Some(epochs) = args.epochs {
        if epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        config.epochs = epochs;
    }
    let request = Request {
        config,
        config_source: source.config_source,
        lineage: source.lineage,
        dataset: args.dataset.or(source.dataset).unwrap_or_else(|| SHIPPED[0].name.to_string()),
        seed: args.seed.or(source.study_defaults.map(|d| d.0)).unwrap_or(42),
        holdout: args.holdout.or(source.study_defaults.map(|d| d.1)).unwrap_or(DEFAULT_HOLDOUT),
        device: args.device,
        out_dir: args.out,
    };
    let outcome = train::run(store, &request)?;
    if let Some(old) = &outcome.moved_aside {
        println!("kept the previous {} as {}", outcome.out_dir.display(), old.display());
    }
    let rec = store.run(&outcome.run_id)?;
    println!(
        "run {}: {} epochs, best epoch {} (val loss {:.4}, val accuracy {:.2}%), trained {} .. {}, validated {} .. {}, holdout from {}",
        outcome.run_id,
        outcome.epochs_run,
        outcome.best_epoch,
        rec.best_val_loss.unwrap_or(f64::NAN),
        100.0 * rec.best_val_accuracy.unwrap_or(f64::NAN),
        rec.run.train_span.0,
        rec.run.train_span.1,
        rec.run.val_span.0,
        rec.run.val_span.1,
        rec.run.holdout_start.map_or("(none)".into(), |d| d.to_string()),
    );
    println!("wrote {}/: config.json, best_model/, final_model/, training_results.json", outcome.out_dir.display());
    println!("next: hptune backtest --model-path {}", outcome.out_dir.display());
    Ok(())
}
