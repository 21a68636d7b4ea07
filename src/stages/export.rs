//! Compatibility files, written from database rows: a stage's JSON can always be written again.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::files::write_atomic;
use crate::store::Store;

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    write_atomic(path, text.as_bytes())
}

/// `final_model/config.json` and `final_model/training_results.json` of a final-training run.
pub fn final_model(store: &Store, run_id: &str, dir: &Path) -> anyhow::Result<()> {
    let rec = store.run(run_id)?;
    let r = &rec.run;
    let dataset = store.dataset_by_id(&r.dataset_id)?;
    let config: serde_json::Value = serde_json::from_str(&r.config_json)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_json(
        &dir.join("config.json"),
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
    let history: Vec<_> = store
        .epoch_metrics(run_id)?
        .into_iter()
        .map(|m| {
            json!({"epoch": m.epoch, "train_loss": m.train_loss, "val_loss": m.val_loss,
                   "val_accuracy": m.val_accuracy, "seconds": m.seconds})
        })
        .collect();
    let checkpoints: Vec<_> = store
        .checkpoints(run_id)?
        .into_iter()
        .map(|c| json!({"role": c.role, "epoch": c.epoch, "path": c.path, "sha256": c.sha256, "size_bytes": c.size_bytes}))
        .collect();
    write_json(
        &dir.join("training_results.json"),
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

/// `hyperparameter_tuning_results/`: `trial_results.json`, `optimization_history.json`,
/// `optimization_history.png` and `optimization_study.db` (Optuna storage), from the study's rows.
/// The trials' checkpoints are already in `checkpoints/`.
pub fn tuning(store: &Store, study_name: &str, dir: &Path) -> anyhow::Result<()> {
    let study =
        store.study(study_name)?.with_context(|| format!("no study {study_name} in {}", store.path().display()))?;
    let space = crate::search::Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let trials = store.trials(study_name)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let best = trials
        .iter()
        .filter(|t| t.state == "COMPLETE" && t.value.is_some())
        .max_by(|a, b| a.value.unwrap().total_cmp(&b.value.unwrap()).then(b.number.cmp(&a.number)));
    let mut checkpoints = std::collections::HashMap::new();
    for t in &trials {
        if let Some(run) = &t.run_id {
            if let Some(c) = store.checkpoints(run)?.into_iter().next() {
                checkpoints.insert(t.number, c);
            }
        }
    }
    let trial_json = |t: &crate::store::TrialRecord| {
        json!({
            "number": t.number,
            "phase": t.phase,
            "state": t.state,
            "value": t.value,
            "val_loss": t.val_loss,
            "params": t.params,
            "pruned_epoch": t.pruned_epoch,
            "reason": t.reason,
            "started_at": t.started_at.to_string(),
            "finished_at": t.finished_at.map(|d| d.to_string()),
            "duration_s": t.duration_s,
            "run_id": t.run_id,
            "checkpoint": checkpoints.get(&t.number).map(|c| json!({"path": c.path, "sha256": c.sha256})),
        })
    };
    write_json(
        &dir.join("trial_results.json"),
        &json!({
            "study": study.study_name,
            "direction": study.direction,
            "metric": "val_accuracy",
            "seed": study.seed,
            "n_trials": study.n_trials,
            "phases": {"random": study.plan.random, "bayesian": study.plan.bayesian, "finetune": study.plan.finetune},
            "best_trial": best.map(trial_json),
            "trials": trials.iter().map(trial_json).collect::<Vec<_>>(),
        }),
    )?;
    let mut best_so_far = f64::NEG_INFINITY;
    let history: Vec<_> = trials
        .iter()
        .map(|t| {
            if t.state == "COMPLETE" {
                best_so_far = best_so_far.max(t.value.unwrap_or(f64::NEG_INFINITY));
            }
            json!({"number": t.number, "phase": t.phase, "state": t.state, "value": t.value,
                   "best_value": best_so_far.is_finite().then_some(best_so_far)})
        })
        .collect();
    write_json(&dir.join("optimization_history.json"), &json!({"study": study.study_name, "history": history}))?;
    history_png(&trials, &dir.join("optimization_history.png"))?;
    let intermediate = |t: &crate::store::TrialRecord| -> Vec<(usize, f64)> {
        t.run_id
            .as_ref()
            .and_then(|r| store.epoch_metrics(r).ok())
            .map(|ms| ms.into_iter().map(|m| (m.epoch, m.val_accuracy)).collect())
            .unwrap_or_default()
    };
    super::optuna_export::write(&dir.join("optimization_study.db"), &study, &space, &trials, &intermediate)
}

/// Trial values (dots, coloured by phase; pruned in red) and the best so far (line).
fn history_png(trials: &[crate::store::TrialRecord], path: &Path) -> anyhow::Result<()> {
    use crate::plot::*;
    let points: Vec<(f64, f64, &str, &str)> = trials
        .iter()
        .filter_map(|t| t.value.map(|v| (t.number as f64, v, t.phase.as_str(), t.state.as_str())))
        .collect();
    let mut canvas = Canvas::new(800, 450);
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (lo, hi) = if points.is_empty() { (0.0, 1.0) } else { (lo - 0.01, hi + 0.01) };
    let frame = Frame { x: (0.0, trials.len().max(2) as f64 - 1.0), y: (lo, hi), margin: 30 };
    canvas.axes(&frame, 5);
    let mut best: Option<(i64, i64)> = None;
    let mut best_value = f64::NEG_INFINITY;
    for &(x, y, phase, state) in &points {
        let colour = match (state, phase) {
            ("PRUNED", _) => RED,
            (_, "random") => GREY,
            (_, "bayesian") => BLUE,
            _ => ORANGE,
        };
        canvas.dot(canvas.at(&frame, x, y), 3, colour);
        if state == "COMPLETE" && y > best_value {
            best_value = y;
        }
        if best_value.is_finite() {
            let p = canvas.at(&frame, x, best_value);
            if let Some(prev) = best {
                canvas.line(prev, (p.0, prev.1), BLACK);
                canvas.line((p.0, prev.1), p, BLACK);
            }
            best = Some(p);
        }
    }
    write_atomic(path, &canvas.png())
}

fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (Some(mean), Some(std))
}

/// `extended_training_results/extended_training_results.json` and each configuration's
/// `extended_model_<rank>/config.json`, from an extended run's rows. The fold checkpoints are
/// already in `extended_model_<rank>/fold_<k>/`.
pub fn extended(store: &Store, id: &str, dir: &Path) -> anyhow::Result<()> {
    let run = store.extended_run(id)?;
    let configs = store.extended_configs(id)?;
    let folds = store.cv_folds(id)?;
    let dataset = store.dataset_by_id(&run.dataset_id)?;
    let tickers = dataset.as_ref().map(|d| d.tickers.clone()).unwrap_or_default();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut results = Vec::new();
    for c in &configs {
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
            fold_json.push(json!({
                "fold": f.fold,
                "status": f.status,
                "train_start": f.train_span.0.to_string(), "train_end": f.train_span.1.to_string(),
                "val_start": f.val_span.0.to_string(), "val_end": f.val_span.1.to_string(),
                "n_train": f.n_train, "n_val": f.n_val, "n_purged": f.n_purged, "n_embargoed": f.n_embargoed,
                "epochs_run": f.epochs_run, "best_epoch": f.best_epoch,
                "val_loss": f.val_loss, "val_accuracy": f.val_accuracy,
                "run_id": f.run_id,
                "checkpoint": ckpt.map(|c| json!({"path": c.path, "sha256": c.sha256})),
            }));
        }
        let entry = json!({
            "config_rank": c.config_rank,
            "trial_number": c.trial_number,
            "tuning_value": c.tuning_value,
            "config": config,
            "cv_mean_accuracy": mean,
            "cv_std_accuracy": std,
            "cv_worst_accuracy": accs.iter().copied().reduce(f64::min),
            "folds": fold_json,
        });
        let model_dir = dir.join(format!("extended_model_{}", c.config_rank));
        std::fs::create_dir_all(&model_dir)?;
        write_json(
            &model_dir.join("config.json"),
            &json!({"config": entry["config"], "tickers": tickers, "extended_run_id": id,
                    "study": run.study_name, "trial_number": c.trial_number, "config_rank": c.config_rank}),
        )?;
        results.push(entry);
    }
    write_json(
        &dir.join("extended_training_results.json"),
        &json!({
            "extended_run_id": id,
            "study": run.study_name,
            "status": run.status,
            "scheme": run.scheme,
            "n_folds": run.n_folds,
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

/// `best_config.json` (the recorded bytes) and `analysis_plots/` of a selection.
pub fn analysis(store: &Store, selection_id: &str, dir: &Path) -> anyhow::Result<()> {
    let s = store
        .selection(Some(selection_id))?
        .with_context(|| format!("no selection {selection_id} in {}", store.path().display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(&dir.join("best_config.json"), s.best_config_json.as_bytes())?;
    let plots = dir.join("analysis_plots");
    std::fs::create_dir_all(&plots)?;
    let configs = store.extended_configs(&s.extended_run_id)?;
    let folds = store.cv_folds(&s.extended_run_id)?;
    fold_scores_png(&configs, &folds, s.config_rank, &plots.join("cv_fold_scores.png"))?;
    tuning_vs_cv_png(&configs, &folds, s.config_rank, &plots.join("tuning_vs_cv.png"))
}

fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() {
        (lo - 0.01, hi + 0.01)
    } else {
        (0.0, 1.0)
    }
}

/// Each configuration's fold accuracies (dots) and mean (bar); the selected one in orange.
fn fold_scores_png(
    configs: &[crate::store::ExtendedConfig],
    folds: &[crate::store::FoldRecord],
    selected: usize,
    path: &Path,
) -> anyhow::Result<()> {
    use crate::plot::*;
    let mut canvas = Canvas::new(800, 450);
    let frame = Frame {
        x: (0.5, configs.len() as f64 + 0.5),
        y: value_range(folds.iter().filter_map(|f| f.val_accuracy)),
        margin: 30,
    };
    canvas.axes(&frame, 5);
    for c in configs {
        let colour = if c.config_rank == selected { ORANGE } else { BLUE };
        let accs: Vec<f64> =
            folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
        let x = c.config_rank as f64;
        for a in &accs {
            canvas.dot(canvas.at(&frame, x, *a), 4, colour);
        }
        if let (Some(mean), _) = mean_std(&accs) {
            canvas.line(canvas.at(&frame, x - 0.25, mean), canvas.at(&frame, x + 0.25, mean), BLACK);
        }
    }
    write_atomic(path, &canvas.png())
}

/// Tuning value (x) against cross-validated mean (y) per configuration, with the line y = x.
fn tuning_vs_cv_png(
    configs: &[crate::store::ExtendedConfig],
    folds: &[crate::store::FoldRecord],
    selected: usize,
    path: &Path,
) -> anyhow::Result<()> {
    use crate::plot::*;
    let points: Vec<(usize, f64, f64)> = configs
        .iter()
        .filter_map(|c| {
            let accs: Vec<f64> =
                folds.iter().filter(|f| f.config_rank == c.config_rank).filter_map(|f| f.val_accuracy).collect();
            mean_std(&accs).0.map(|m| (c.config_rank, c.tuning_value, m))
        })
        .collect();
    let range = value_range(points.iter().flat_map(|p| [p.1, p.2]));
    let frame = Frame { x: range, y: range, margin: 30 };
    let mut canvas = Canvas::new(500, 500);
    canvas.axes(&frame, 5);
    canvas.line(canvas.at(&frame, range.0, range.0), canvas.at(&frame, range.1, range.1), GREY);
    for (rank, x, y) in points {
        canvas.dot(canvas.at(&frame, x, y), 5, if rank == selected { ORANGE } else { BLUE });
    }
    write_atomic(path, &canvas.png())
}

/// `backtesting_results/`: `stats.json`, `trades.csv`, `equity_curve.csv` and `equity_curve.png`
/// of a backtest, from its rows.
pub fn backtest(store: &Store, id: &str, dir: &Path) -> anyhow::Result<()> {
    let b = store.backtest(id)?;
    let stats = store.backtest_stats(id)?;
    let equity = store.backtest_equity(id)?;
    let dataset = store.dataset_by_id(&b.dataset_id)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut scopes = serde_json::Map::new();
    for s in &stats {
        let scope = scopes.entry(s.scope.clone()).or_insert_with(|| json!({}));
        let strategy = scope.as_object_mut().unwrap().entry(s.strategy.clone()).or_insert_with(|| {
            json!({"Start": b.start_date.to_string(), "End": b.end_date.to_string(),
                   "Duration": format!("{} days", (b.end_date - b.start_date).num_days())})
        });
        strategy.as_object_mut().unwrap().insert(s.name.clone(), json!(s.value));
    }
    let portfolio = scopes.remove("portfolio").unwrap_or(json!({}));
    write_json(
        &dir.join("stats.json"),
        &json!({
            "backtest_id": b.backtest_id,
            "model": {"run_id": b.run_id, "checkpoint_id": b.checkpoint_id, "source": b.model_source},
            "dataset": {"name": dataset.as_ref().map(|d| d.name.clone()), "dataset_id": b.dataset_id},
            "tickers": b.tickers,
            "period": {"start": b.start_date.to_string(), "end": b.end_date.to_string(),
                       "first_unseen": b.first_unseen.map(|d| d.to_string()), "in_sample": b.in_sample},
            "predictions": {"accuracy": b.accuracy, "count": b.n_predictions},
            "settings": {"mode": b.mode, "threshold": b.threshold, "fill": b.fill, "commission_bps": b.commission_bps,
                         "slippage_bps": b.slippage_bps, "initial_cash": b.initial_cash, "allocation": "equal weight per ticker"},
            "strategy": portfolio["model"],
            "benchmark": portfolio["buy_and_hold"],
            "per_ticker": b.tickers.iter().map(|t| (t.clone(), scopes.get(t).cloned().unwrap_or(json!({}))))
                .collect::<serde_json::Map<_, _>>(),
            "hptune_version": crate::VERSION,
        }),
    )?;
    store.backtest_csv(id, "trades", &dir.join("trades.csv"))?;
    store.backtest_csv(id, "equity", &dir.join("equity_curve.csv"))?;
    equity_png(&equity, &dir.join("equity_curve.png"))
}

/// Equity (blue) and buy and hold (grey) above; the drawdown (red) below.
fn equity_png(rows: &[crate::store::EquityRow], path: &Path) -> anyhow::Result<()> {
    use crate::plot::*;
    let mut canvas = Canvas::new(900, 600);
    let x = (0.0, rows.len().max(2) as f64 - 1.0);
    // Equity in the upper two thirds, the drawdown in the lower third.
    let (lo, hi) = value_range(rows.iter().flat_map(|r| [r.equity, r.benchmark]));
    let top = Frame { x, y: (lo - 0.5 * (hi - lo), hi), margin: 30 };
    let dd_low = rows.iter().map(|r| r.drawdown_pct).fold(0.0, f64::min).min(-1.0);
    let bottom = Frame { x, y: (dd_low, dd_low + (0.0 - dd_low) * 3.2), margin: 30 };
    canvas.axes(&top, 5);
    let mut draw = |frame: &Frame, ys: &dyn Fn(&crate::store::EquityRow) -> f64, colour| {
        for (i, w) in rows.windows(2).enumerate() {
            let a = canvas.at(frame, i as f64, ys(&w[0]));
            let b = canvas.at(frame, i as f64 + 1.0, ys(&w[1]));
            canvas.line(a, b, colour);
        }
    };
    draw(&bottom, &|_| 0.0, BLACK);
    draw(&bottom, &|r| r.drawdown_pct, RED);
    draw(&top, &|r| r.benchmark, GREY);
    draw(&top, &|r| r.equity, BLUE);
    write_atomic(path, &canvas.png())
}
