//! Stage 4, final training: one configuration on the training span of a dataset, the latest part
//! of it validating for early stopping, the most recent `holdout` share reserved for the backtest.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint;
use crate::features::{self, Scaler};
use crate::model::Device;
use crate::model::{self, build_samples, ModelConfig, Net};
use crate::progress::Progress;
use crate::split::Split;
use crate::states::{Role, RunStage};
use crate::store::{Lineage, NewRun, Selection, Store};

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
    super::with_heartbeat(super::renew_runs(store), || train(store, req))
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
    let train_set = build_samples(&table, &scaler, split.train.clone(), cfg);
    let val_set = build_samples(&table, &scaler, split.val.clone(), cfg);

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
        let outcomes = crate::outcomes::from_logits(&table, split.val.clone(), &outcome.best_val_logits);
        store.finish_run(&run_id, (outcome.epochs_run, outcome.best_epoch), &records, &outcomes)?;
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

/// What `train` trains, where it comes from, and what it was selected on.
pub struct Source {
    pub config: ModelConfig,
    pub config_source: String,
    pub lineage: Lineage,
    /// The dataset the configuration was selected on, when known.
    pub dataset: Option<String>,
    /// The seed and holdout of the selection's study: what training it uses unless told otherwise.
    pub study_defaults: Option<(u64, f64)>,
}

/// The configuration to train: `config` (a plain configuration, or a `best_config.json`, whose
/// dataset, tickers and selection it keeps), or the newest selection. `dataset` is the one asked
/// for, if any; a `best_config.json`'s tickers must match it.
pub fn resolve_source(store: &Store, config: Option<&Path>, dataset: Option<&str>) -> anyhow::Result<Source> {
    let Some(path) = config else {
        let s = store.selection(None)?.with_context(|| {
            format!(
                "no --config given and no best configuration is selected in {}: run `hptune analyze` first \
                 (after `hptune tune` and `hptune extend`), or pass --config FILE",
                store.path().display()
            )
        })?;
        return from_selection(store, &s, format!("selection {}", s.selection_id));
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --config {}", path.display()))?;
    let config = ModelConfig::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let file = format!("file {} (sha256 {})", path.display(), checkpoint::sha256_hex(text.as_bytes()));
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let Some(selection_id) = json.pointer("/selection/selection_id").and_then(|v| v.as_str()) else {
        return Ok(Source {
            config,
            config_source: file,
            lineage: Lineage::Given,
            dataset: None,
            study_defaults: None,
        });
    };
    // A best_config.json: its dataset (by content) and tickers come with it.
    let hash = json.pointer("/dataset/content_hash").and_then(|v| v.as_str()).unwrap_or_default();
    let name = json.pointer("/dataset/name").and_then(|v| v.as_str()).unwrap_or("?");
    let wanted: Vec<String> = serde_json::from_value(json["tickers"].clone()).unwrap_or_default();
    let data = match dataset {
        Some(d) => store.dataset(d)?,
        None => store.datasets()?.into_iter().find(|d| d.content_hash == hash).with_context(|| {
            format!(
                "{}: it was selected on dataset {name} (content hash {hash}), which {} does not hold: import that \
                 data (`hptune data import`), or pass --dataset with the same tickers",
                path.display(),
                store.path().display()
            )
        })?,
    };
    if !wanted.is_empty() && data.tickers != wanted {
        bail!(
            "{}: the configuration was selected for tickers {}, dataset {} has {}; a model's tickers and their order \
             are part of it",
            path.display(),
            wanted.join(", "),
            data.name,
            data.tickers.join(", ")
        );
    }
    match store.selection(Some(selection_id))? {
        Some(s) => {
            let mut source = from_selection(store, &s, format!("selection {selection_id} ({file})"))?;
            source.dataset = Some(data.name);
            Ok(source)
        }
        None => Ok(Source {
            config,
            config_source: format!("{file}, selection {selection_id} of another database"),
            lineage: Lineage::Given,
            dataset: Some(data.name),
            study_defaults: None,
        }),
    }
}

fn from_selection(store: &Store, s: &Selection, config_source: String) -> anyhow::Result<Source> {
    let config = ModelConfig::from_json(&s.best_config_json)
        .map_err(|e| anyhow::anyhow!("selection {}: {e}", s.selection_id))?;
    let study = store.study(&s.study_name)?;
    Ok(Source {
        config,
        config_source,
        lineage: Lineage::Selection(s.selection_id.clone()),
        dataset: store.dataset_by_id(&s.dataset_id)?.map(|d| d.name),
        study_defaults: study.map(|st| (st.seed, st.holdout)),
    })
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
    let table = features::compute(&panel).for_model(loaded.scaler.mean.len());
    let first =
        table.dates.iter().position(|d| *d == loaded.run.run.val_span.0).context("validation start not in data")?;
    let last =
        table.dates.iter().position(|d| *d == loaded.run.run.val_span.1).context("validation end not in data")?;
    let val = build_samples(&table, &loaded.scaler, first..last + 1, &loaded.config);
    let logits = loaded.net.predict(&val.x, val.n, 256)?;
    let loss = model::bce_mean(&logits, &val.y);
    Ok((loss, model::accuracy(&logits, &val.y)))
}
