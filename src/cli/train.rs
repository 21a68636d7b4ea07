//! `hptune train`: final training of one configuration (stage 4).

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::checkpoint::sha256_hex;
use crate::data::SHIPPED;
use crate::model::Device;
use crate::model::ModelConfig;
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
    #[arg(long, value_parser = super::at_least_one)]
    pub epochs: Option<usize>,
    /// Dataset to train on (default: the selection's dataset, or the shipped sp500_20_close).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Seed of every random draw: the same seed gives the same weights and metrics on CPU.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of the most recent dates reserved for the backtest, never trained on.
    #[arg(long, value_parser = super::holdout_share, default_value_t = DEFAULT_HOLDOUT)]
    pub holdout: f64,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Output folder (an existing one is moved aside with a timestamp).
    #[arg(long, default_value = crate::layout::FINAL_DIR)]
    pub out: PathBuf,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    let (mut config, (config_source, lineage), selected_dataset) = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read --config {}", path.display()))?;
            let config = ModelConfig::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let source = format!("file {} (sha256 {})", path.display(), sha256_hex(text.as_bytes()));
            (config, (source, Lineage::Given), None)
        }
        None => {
            let Some(s) = store.selection(None)? else {
                bail!(
                    "no --config given and no best configuration is selected in {}: run `hptune analyze` first \
                     (after `hptune tune` and `hptune extend`), or pass --config FILE",
                    store.path().display()
                );
            };
            let config = ModelConfig::from_json(&s.best_config_json)
                .map_err(|e| anyhow::anyhow!("selection {}: {e}", s.selection_id))?;
            let dataset = store.dataset_by_id(&s.dataset_id)?.map(|d| d.name);
            println!(
                "training {} (study {} trial {}, extended run {})",
                s.selection_id, s.study_name, s.trial_number, s.extended_run_id
            );
            (config, (format!("selection {}", s.selection_id), Lineage::Selection(s.selection_id.clone())), dataset)
        }
    };
    if let Some(epochs) = args.epochs {
        if epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        config.epochs = epochs;
    }
    let request = Request {
        config,
        config_source,
        lineage,
        dataset: args.dataset.or(selected_dataset).unwrap_or_else(|| SHIPPED[0].name.to_string()),
        seed: args.seed,
        holdout: args.holdout,
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
    Ok(())
}
