//! Stage 2's folder: `extended_training_results.json`, and per configuration
//! `extended_model_<rank>/config.json` with its fold checkpoints.

use std::path::Path;

use serde_json::json;

use super::{create_dir, mean_std, place_checkpoint, write_json};
use crate::layout;
use crate::store::{ExtendedConfig, FoldRecord, Store};

/// The file and JSON pointer that name the run an extended folder belongs to.
pub const OWNER: (&str, &str) = (layout::EXTENDED_RESULTS, "/extended_run_id");

/// Writes an extended run's folder from its rows.
pub fn extended(store: &Store, id: &str, dir: &Path) -> anyhow::Result<()> {
    let run = store.extended_run(id)?;
    let configs = store.extended_configs(id)?;
    let folds = store.cv_folds(id)?;
    let paths = store.path_results(id)?;
    let dataset = store.dataset_by_id(&run.dataset_id)?;
    let tickers = dataset.as_ref().map(|d| d.tickers.clone()).unwrap_or_default();
    create_dir(dir)?;
    let mut results = Vec::new();
    for c in &configs {
        let mut entry = config_entry(store, id, c, &folds, dir)?;
        if run.scheme == crate::cv::Scheme::Cpcv {
            entry["paths"] = paths
                .iter()
                .filter(|p| p.config_rank == c.config_rank)
                .map(|p| json!({"path": p.path, "dates": p.dates, "accuracy": p.accuracy, "log_loss": p.log_loss, "sharpe": p.sharpe}))
                .collect();
        }
        let model_dir = layout::extended_model_dir(dir, c.config_rank);
        create_dir(&model_dir)?;
        write_json(
            &model_dir.join(layout::CONFIG),
            &json!({"config": entry["config"], "tickers": tickers, "extended_run_id": id,
                    "study": run.study_name, "trial_number": c.trial_number, "config_rank": c.config_rank}),
        )?;
        results.push(entry);
    }
    write_json(
        &dir.join(layout::EXTENDED_RESULTS),
        &json!({
            "extended_run_id": id,
            "study": run.study_name,
            "status": run.status,
            "scheme": run.scheme,
            "n_folds": run.n_folds,
            "test_groups": (run.scheme == crate::cv::Scheme::Cpcv).then_some(run.test_groups),
            "embargo_days": run.embargo,
            "label_horizon": run.label_horizon,
            "epochs": run.epochs,
            "seed": run.seed,
            "holdout_start": run.holdout_start.map(|d| d.to_string()),
            "tickers": tickers,
            "results": results,
        }),
    )
}

/// One configuration's entry: its folds (with their checkpoints placed under `dir`) and scores.
fn config_entry(
    store: &Store,
    id: &str,
    c: &ExtendedConfig,
    folds: &[FoldRecord],
    dir: &Path,
) -> anyhow::Result<serde_json::Value> {
    let config: serde_json::Value = serde_json::from_str(&c.config_json)?;
    let mine: Vec<_> = folds.iter().filter(|f| f.config_rank == c.config_rank).collect();
    let accs: Vec<f64> = mine.iter().filter_map(|f| f.val_accuracy).collect();
    let (mean, std) = mean_std(&accs);
    let mut fold_json = Vec::new();
    for f in &mine {
        let ckpt = match &f.run_id {
            Some(r) => store.checkpoints(r)?.into_iter().next(),
            None => None,
        };
        let ckpt = match ckpt {
            Some(record) => {
                Some(place_checkpoint(store, &record, &layout::fold_checkpoint_dir(dir, c.config_rank, id, f.fold))?)
            }
            None => None,
        };
        fold_json.push(json!({
            "fold": f.fold,
            "status": f.status,
            "train_start": f.train_span.0.to_string(), "train_end": f.train_span.1.to_string(),
            "val_start": f.val_span.0.to_string(), "val_end": f.val_span.1.to_string(),
            "n_train": f.n_train, "n_val": f.n_val, "n_purged": f.n_purged, "n_embargoed": f.n_embargoed,
            "epochs_run": f.epochs_run, "best_epoch": f.best_epoch,
            "val_loss": f.val_loss, "val_accuracy": f.val_accuracy,
            "run_id": f.run_id,
            "checkpoint": ckpt,
        }));
        if !f.test_groups.is_empty() {
            fold_json.last_mut().unwrap()["test_groups"] = json!(f.test_groups);
        }
    }
    Ok(json!({
        "config_rank": c.config_rank,
        "trial_number": c.trial_number,
        "tuning_value": c.tuning_value,
        "config": config,
        "cv_mean_accuracy": mean,
        "cv_std_accuracy": std,
        "cv_worst_accuracy": accs.iter().copied().reduce(f64::min),
        "folds": fold_json,
    }))
}
