//! Stage 4's folder: `config.json`, `training_results.json` and the `best_model/` and
//! `final_model/` checkpoints of a final-training run.

use std::path::Path;

use serde_json::json;

use super::{create_dir, place_checkpoint, write_json};
use crate::layout;
use crate::model::EpochMetrics;
use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLUE, GREEN, GREY, ORANGE};
use crate::store::Store;

/// The file and JSON pointer that name the run a final-model folder belongs to.
pub const OWNER: (&str, &str) = (layout::CONFIG, "/run_id");

/// Writes a final-training run's folder from its rows.
pub fn final_model(store: &Store, run_id: &str, dir: &Path) -> anyhow::Result<()> {
    let rec = store.run(run_id)?;
    let r = &rec.run;
    let dataset = store.dataset_by_id(&r.dataset_id)?;
    let config: serde_json::Value = serde_json::from_str(&r.config_json)?;
    create_dir(dir)?;
    write_json(
        &dir.join(layout::CONFIG),
        &json!({
            "config": config,
            "tickers": r.tickers,
            "dataset": {
                "name": dataset.as_ref().map(|d| d.name.clone()),
                "dataset_id": r.dataset_id,
                "content_hash": dataset.as_ref().map(|d| d.content_hash.clone()),
            },
            "train": { "start": r.train_span.0.to_string(), "end": r.train_span.1.to_string() },
            "validation": { "start": r.val_span.0.to_string(), "end": r.val_span.1.to_string() },
            "holdout_start": r.holdout_start.map(|d| d.to_string()),
            "run_id": r.run_id,
            "seed": r.seed,
            "config_source": r.config_source,
            "hptune_version": rec.hptune_version,
        }),
    )?;
    let epochs = store.epoch_metrics(run_id)?;
    crate::files::write_atomic(
        &dir.join(layout::TRAINING_CURVES_PNG),
        &curves_chart(run_id, &epochs, rec.best_epoch).png()?,
    )?;
    let history: Vec<_> = epochs
        .into_iter()
        .map(|m| {
            json!({"epoch": m.epoch, "train_loss": m.train_loss, "val_loss": m.val_loss,
                   "val_accuracy": m.val_accuracy, "seconds": m.seconds})
        })
        .collect();
    let mut checkpoints = Vec::new();
    for c in store.checkpoints(run_id)? {
        let placed = place_checkpoint(store, &c, &layout::final_checkpoint_dir(dir, c.role))?;
        checkpoints.push(json!({"role": c.role, "epoch": c.epoch, "path": placed["path"], "sha256": c.sha256,
                                "size_bytes": c.size_bytes}));
    }
    write_json(
        &dir.join(layout::TRAINING_RESULTS),
        &json!({
            "run_id": run_id,
            "status": rec.status,
            "epochs_run": rec.epochs_run,
            "best_epoch": rec.best_epoch,
            "best_val_loss": rec.best_val_loss,
            "best_val_accuracy": rec.best_val_accuracy,
            "history": history,
            "checkpoints": checkpoints,
        }),
    )
}

/// Training and validation loss per epoch above, validation accuracy below; the best epoch marked.
pub(crate) fn curves_chart(run_id: &str, epochs: &[EpochMetrics], best: Option<i32>) -> Chart {
    let line = |f: &dyn Fn(&EpochMetrics) -> f64| epochs.iter().map(|m| (m.epoch as f64, f(m))).collect();
    let at_best = |f: &dyn Fn(&EpochMetrics) -> f64| {
        epochs.iter().filter(|m| Some(m.epoch as i32) == best).map(|m| (m.epoch as f64, f(m))).collect()
    };
    let loss = Panel {
        title: format!("Training curves: run {run_id}"),
        x_label: "epoch".into(),
        y_label: "binary cross-entropy".into(),
        x_ticks: XTicks::Integers,
        series: vec![
            Series::new("training loss", GREY, Mark::Line, line(&|m| m.train_loss)),
            Series::new("validation loss", BLUE, Mark::Line, line(&|m| m.val_loss)),
            Series::new("best epoch (kept weights)", ORANGE, Mark::Dots, at_best(&|m| m.val_loss)),
        ],
    };
    let accuracy = Panel {
        title: "Validation accuracy".into(),
        x_label: "epoch".into(),
        y_label: "direction accuracy (%)".into(),
        x_ticks: XTicks::Integers,
        series: vec![
            Series::new("validation accuracy", GREEN, Mark::Line, line(&|m| 100.0 * m.val_accuracy)),
            Series::new("best epoch", ORANGE, Mark::Dots, at_best(&|m| 100.0 * m.val_accuracy)),
        ],
    };
    Chart::new(vec![loss, accuracy], 1, (800, 640))
}
