//! Stage 1's folder: `trial_results.json`, `optimization_history.json` and `.png`,
//! `optimization_study.db` (Optuna's storage) and each trial's checkpoint.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::{create_dir, place_checkpoint, write_json};
use crate::layout;
use crate::search::Phase;
use crate::search::Space;
use crate::states::TrialState;
use crate::store::{optuna_sqlite, Store, StudyRecord, TrialRecord};

/// The file and JSON pointer that name the study a tuning folder belongs to.
pub const OWNER: (&str, &str) = (layout::TRIAL_RESULTS, "/study");

/// Writes a study's folder from its rows.
pub fn tuning(store: &Store, study_name: &str, dir: &Path) -> anyhow::Result<()> {
    let study =
        store.study(study_name)?.with_context(|| format!("no study {study_name} in {}", store.path().display()))?;
    let space = Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let trials = store.trials(study_name)?;
    create_dir(dir)?;
    let mut checkpoints = HashMap::new();
    for t in &trials {
        let Some(run) = &t.run_id else { continue };
        if let Some(record) = store.checkpoints(run)?.into_iter().next() {
            let place = layout::trial_checkpoint_dir(dir, study_name, t.number);
            checkpoints.insert(t.number, place_checkpoint(store, &record, &place)?);
        }
    }
    write_json(&dir.join(layout::TRIAL_RESULTS), &trial_results(&study, &trials, &checkpoints))?;
    write_json(&dir.join(layout::HISTORY_JSON), &history(&study, &trials))?;
    history_png(&trials, &dir.join(layout::HISTORY_PNG))?;
    let optuna: Vec<optuna_sqlite::Trial> = trials.iter().map(|t| optuna_trial(store, &space, t)).collect();
    let attrs = json!({"seed": study.seed, "epochs": study.epochs, "n_trials": study.n_trials}).to_string();
    let maximize = study.direction == "maximize";
    optuna_sqlite::write(&dir.join(layout::OPTUNA_DB), (&study.study_name, maximize, &attrs), &optuna)
}

fn trial_results(
    study: &StudyRecord,
    trials: &[TrialRecord],
    checkpoints: &HashMap<usize, serde_json::Value>,
) -> serde_json::Value {
    let best = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some())
        .max_by(|a, b| a.value.unwrap().total_cmp(&b.value.unwrap()).then(b.number.cmp(&a.number)));
    let trial_json = |t: &TrialRecord| {
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
            "checkpoint": checkpoints.get(&t.number),
        })
    };
    json!({
        "study": study.study_name,
        "direction": study.direction,
        "metric": "val_accuracy",
        "seed": study.seed,
        "n_trials": study.n_trials,
        "phases": {"random": study.plan.random, "bayesian": study.plan.bayesian, "finetune": study.plan.finetune},
        "best_trial": best.map(trial_json),
        "trials": trials.iter().map(trial_json).collect::<Vec<_>>(),
    })
}

/// Each trial's value and the best value so far.
fn history(study: &StudyRecord, trials: &[TrialRecord]) -> serde_json::Value {
    let mut best_so_far = f64::NEG_INFINITY;
    let history: Vec<_> = trials
        .iter()
        .map(|t| {
            if t.state == TrialState::Complete {
                best_so_far = best_so_far.max(t.value.unwrap_or(f64::NEG_INFINITY));
            }
            json!({"number": t.number, "phase": t.phase, "state": t.state, "value": t.value,
                   "best_value": best_so_far.is_finite().then_some(best_so_far)})
        })
        .collect();
    json!({"study": study.study_name, "history": history})
}

/// A trial as Optuna stores it: parameters in Optuna's internal representation with their
/// distributions, the per-epoch validation accuracy as intermediate values, and the value (a
/// PRUNED trial's is its last intermediate value, as Optuna records it).
fn optuna_trial(store: &Store, space: &Space, t: &TrialRecord) -> optuna_sqlite::Trial {
    let params = space
        .params
        .iter()
        .filter_map(|p| {
            let v = t.params.get(&p.name)?;
            let internal = p.dist.to_internal(v)?;
            let stored = if p.dist.is_categorical() { internal } else { v.as_f64().unwrap_or(internal) };
            Some((p.name.clone(), stored, p.dist.optuna_json().to_string()))
        })
        .collect();
    let intermediate: Vec<(usize, f64)> = t
        .run_id
        .as_ref()
        .and_then(|r| store.epoch_metrics(r).ok())
        .map(|ms| ms.into_iter().map(|m| (m.epoch, m.val_accuracy)).collect())
        .unwrap_or_default();
    let value = match t.state {
        TrialState::Complete => t.value,
        TrialState::Pruned => intermediate.last().map(|s| s.1),
        TrialState::Running | TrialState::Fail => None,
    };
    optuna_sqlite::Trial {
        number: t.number,
        state: t.state.as_str().to_string(),
        started_at: t.started_at,
        finished_at: t.finished_at,
        user_attrs: vec![("phase".into(), serde_json::to_string(&t.phase).unwrap_or_default())],
        params,
        intermediate,
        value,
    }
}

/// Trial values (dots, coloured by phase; pruned in red) and the best so far (line).
fn history_png(trials: &[TrialRecord], path: &Path) -> anyhow::Result<()> {
    use crate::plot::*;
    let points: Vec<(f64, f64, Phase, TrialState)> =
        trials.iter().filter_map(|t| t.value.map(|v| (t.number as f64, v, t.phase, t.state))).collect();
    let mut canvas = Canvas::new(800, 450);
    let (lo, hi) = super::value_range(points.iter().map(|p| p.1));
    let frame = Frame { x: (0.0, trials.len().max(2) as f64 - 1.0), y: (lo, hi), margin: 30 };
    canvas.axes(&frame, 5);
    let mut best: Option<(i64, i64)> = None;
    let mut best_value = f64::NEG_INFINITY;
    for &(x, y, phase, state) in &points {
        let colour = match (state, phase) {
            (TrialState::Pruned, _) => RED,
            (_, Phase::Random) => GREY,
            (_, Phase::Bayesian) => BLUE,
            _ => ORANGE,
        };
        canvas.dot(canvas.at(&frame, x, y), 3, colour);
        if state == TrialState::Complete && y > best_value {
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
    crate::files::write_atomic(path, &canvas.png())
}
