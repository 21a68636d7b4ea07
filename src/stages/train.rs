//! Stage 4, final training: one configuration on the training span of a dataset, the latest part
//! of it validating for early stopping, the most recent `holdout` share reserved for the backtest.

use std::path::PathBuf;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint;
use crate::features::{self, Scaler};
use crate::model::Device;
use crate::model::{self, build_samples, ModelConfig, Net};
use crate::progress::Progress;
use crate::split::Split;
use crate::states::Role;
use crate::states::RunStage;
use crate::store::{Lineage, NewRun, Store};

#[derive(Debug, Clone)]
pub struct Request {
    pub config: ModelConfig,
    /// Where the configuration came from, for lineage.
    pub config_source: String,
    /// The same, in lineage columns.
    pub lineage: Lineage,
    pub dataset: String,
    pub seed: u64,
    pub holdout: f64,
    pub device: Device,
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub out_dir: PathBuf,
    pub moved_aside: Option<PathBuf>,
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    super::fail_orphaned_runs(store)?;
    super::with_heartbeat(store, || train(store, req))
}

fn train(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    let device = model::device(req.device)?;
    let (dataset_id, panel) = store.load_panel(&req.dataset)?;
    let table = features::compute(&panel);
    let cfg = &req.config;
    let split =
        Split::new(&table, cfg.seq_len, req.holdout).map_err(|e| anyhow::anyhow!("dataset {}: {e}", req.dataset))?;
    super::check_memory(
        &table,
        cfg.seq_len,
        &format!("training with seq_len {} on dataset {}", cfg.seq_len, req.dataset),
    )?;
    crate::files::check_writable(&req.out_dir)?;
    // The scaler sees the feature rows of training decision dates only.
    let scaler = Scaler::fit(&table, features::WARMUP..split.train.end);
    let train_set = build_samples(&table, &scaler, split.train.clone(), cfg.seq_len);
    let val_set = build_samples(&table, &scaler, split.val.clone(), cfg.seq_len);

    let run_id = crate::ids::new("train");
    let d = |i: usize| table.dates[i];
    store.begin_run(&NewRun {
        run_id: run_id.clone(),
        stage: RunStage::Train,
        dataset_id,
        model_type: cfg.model_type.name().into(),
        config_json: cfg.to_json().to_string(),
        config_source: req.config_source.clone(),
        lineage: req.lineage.clone(),
        seed: req.seed,
        device: req.device.as_str().to_string(),
        tickers: table.tickers.clone(),
        train_span: (d(split.train.start), d(split.train.end - 1)),
        val_span: (d(split.val.start), d(split.val.end - 1)),
        holdout_start: (split.holdout_start < table.dates.len()).then(|| d(split.holdout_start)),
    })?;

    let result = (|| -> anyhow::Result<Outcome> {
        let net =
            Net::new(cfg.shape(table.width(), table.tickers.len()), &mut ChaCha8Rng::seed_from_u64(req.seed), &device)?;
        let settings = cfg.settings(req.seed);
        let progress = Progress::new(format!("train {}", cfg.model_type.name()), cfg.epochs);
        let outcome = model::train(&net, &train_set, &val_set, &settings, |m| {
            store.record_epoch(&run_id, m)?;
            progress.step(
                m.epoch,
                &format!("loss {:.4} val {:.4} acc {:.1}%", m.train_loss, m.val_loss, 100.0 * m.val_accuracy),
            );
            Ok(())
        })?;
        progress.finish();

        let moved_aside = super::set_aside(store, &req.out_dir)?;
        let _claim = crate::files::claim(&req.out_dir)?;
        let mut records = Vec::new();
        for (role, weights, epoch) in
            [(Role::Best, &outcome.best, outcome.best_epoch), (Role::Final, &outcome.last, outcome.epochs_run)]
        {
            let dir = crate::layout::final_checkpoint_dir(&req.out_dir, role);
            records.push(checkpoint::save(&dir, (&run_id, role, epoch), weights, &scaler)?);
        }
        store.finish_run(&run_id, outcome.epochs_run, outcome.best_epoch, &records)?;
        super::export::final_model(store, &run_id, &req.out_dir)?;
        Ok(Outcome {
            run_id: run_id.clone(),
            epochs_run: outcome.epochs_run,
            best_epoch: outcome.best_epoch,
            out_dir: req.out_dir.clone(),
            moved_aside,
        })
    })();
    if let Err(e) = &result {
        // The failure is data: the run stays, marked failed with its reason.
        let _ = store.fail_run(&run_id, &crate::interrupt::reason(e));
    }
    result
}

/// Recomputes a recorded run's validation loss and accuracy from a checkpoint file: the check
/// that a reloaded model predicts what the trained one did.
pub fn evaluate_checkpoint(store: &Store, path: &std::path::Path) -> anyhow::Result<(f64, f64)> {
    let loaded = checkpoint::load(store, path, &candle_core::Device::Cpu)?;
    let name = store
        .dataset_by_id(&loaded.run.run.dataset_id)?
        .map(|d| d.name)
        .context("the run's dataset is no longer in the database")?;
    let (_, panel) = store.load_panel(&name)?;
    let table = features::compute(&panel);
    let first =
        table.dates.iter().position(|d| *d == loaded.run.run.val_span.0).context("validation start not in data")?;
    let last =
        table.dates.iter().position(|d| *d == loaded.run.run.val_span.1).context("validation end not in data")?;
    let val = build_samples(&table, &loaded.scaler, first..last + 1, loaded.config.seq_len);
    let logits = loaded.net.predict(&val.x, val.n, 256)?;
    let loss = model::bce_mean(&logits, &val.y);
    Ok((loss, model::accuracy(&logits, &val.y)))
}
