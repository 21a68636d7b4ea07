//! Stage 1's folder: `trial_results.json`, `optimization_history.json` and `.png`,
//! `optimization_study.db` (Optuna's storage) and each trial's checkpoint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use super::{create_dir, place_checkpoints, write_json};
use crate::layout;
use crate::model::EpochMetrics;
use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLACK, BLUE, GREY, ORANGE, RED};
use crate::search::space::Distribution;
use crate::search::Phase;
use crate::search::Space;
use crate::states::TrialState;
use crate::store::{optuna_sqlite, CheckpointRecord, Store, StudyRecord, TrialRecord};

/// The file and JSON pointer that name the study a tuning folder belongs to.
pub const OWNER: (&str, &str) = (layout::TRIAL_RESULTS, "/study");

/// Writes a study's folder from its rows.
pub fn tuning(store: &Store, study_name: &str, dir: &Path) -> anyhow::Result<()> {
    let study =
        store.study(study_name)?.with_context(|| format!("no study {study_name} in {}", store.path().display()))?;
    let space = Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("{e}"))?;
    let trials = store.trials(study_name)?;
    create_dir(dir)?;
    // One read each for the study's checkpoints and epochs: a file with a year of studies costs
    // this export what this study holds.
    let records = store.study_checkpoints(study_name)?;
    let epochs = store.study_epoch_metrics(study_name)?;
    let places: Vec<(usize, (&CheckpointRecord, PathBuf))> = trials
        .iter()
        .filter_map(|t| {
            let record = records.get(t.run_id.as_ref()?)?;
            Some((t.number, (record, layout::trial_checkpoint_dir(dir, study_name, t.number))))
        })
        .collect();
    let (numbers, places): (Vec<usize>, Vec<_>) = places.into_iter().unzip();
    let checkpoints: HashMap<usize, serde_json::Value> =
        numbers.into_iter().zip(place_checkpoints(store, &places)?).collect();
    // Seed trials (`--warm-start`) are not trials of the study: the exports name them.
    let seeds: Vec<serde_json::Value> = store
        .seeds(study_name)?
        .iter()
        .map(|s| json!({"study": s.source_study, "number": s.source_number, "value": s.value, "params": s.params}))
        .collect();
    let mut results = trial_results(&study, &trials, &checkpoints);
    results["warm_start"] = json!(seeds);
    write_json(&dir.join(layout::TRIAL_RESULTS), &results)?;
    write_json(&dir.join(layout::HISTORY_JSON), &history(&study, &trials))?;
    crate::files::write_atomic(&dir.join(layout::HISTORY_PNG), &history_chart(&study.study_name, &trials).png()?)?;
    crate::files::write_atomic(&dir.join(layout::SLICES_PNG), &slices_chart(&space, &trials).png()?)?;
    let optuna: Vec<optuna_sqlite::Trial> = trials.iter().map(|t| optuna_trial(&space, t, &epochs)).collect();
    // `hptune note` on the study and on its trials' runs, as optuna-dashboard shows notes; the
    // export numbers its trials 1, 2, ... in this order.
    let mut system_attrs = vec![(SAMPLER_ATTR.into(), json!(study.sampler).to_string())];
    let (study_notes, trial_notes) = store.study_notes(study_name)?;
    if !study_notes.is_empty() {
        system_attrs.extend(optuna_sqlite::dashboard_note(None, &note_body(&study_notes)));
    }
    for (number, notes) in &trial_notes {
        if let Some(i) = trials.iter().position(|t| t.number == *number) {
            system_attrs.extend(optuna_sqlite::dashboard_note(Some(i as i64 + 1), &note_body(notes)));
        }
    }
    let optuna_study = optuna_sqlite::Study {
        name: &study.study_name,
        maximize: study.direction == "maximize",
        settings_json:
            json!({"seed": study.seed, "epochs": study.epochs, "n_trials": study.n_trials, "warm_start": seeds})
                .to_string(),
        system_attrs,
    };
    optuna_sqlite::write(&dir.join(layout::OPTUNA_DB), &optuna_study, &optuna)
}

/// Notes as one Markdown body, each under its date.
fn note_body(notes: &[crate::store::Note]) -> String {
    notes
        .iter()
        .map(|n| format!("**{} UTC**\n\n{}", n.written_at.format("%Y-%m-%d %H:%M"), n.text))
        .collect::<Vec<_>>()
        .join("\n\n")
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
            "sampler": t.sampled_by,
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
        "sampler": study.sampler,
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
            json!({"number": t.number, "phase": t.phase, "sampler": t.sampled_by, "state": t.state, "value": t.value,
                   "best_value": best_so_far.is_finite().then_some(best_so_far)})
        })
        .collect();
    json!({"study": study.study_name, "history": history})
}

/// The system attribute naming the study's sampler, and on each trial the one that drew it.
pub const SAMPLER_ATTR: &str = "hptune:sampler";

/// A trial as Optuna stores it: parameters in Optuna's internal representation with their
/// distributions, the per-epoch validation accuracy as intermediate values, and the value (a
/// PRUNED trial's is its last intermediate value, as Optuna records it).
fn optuna_trial(space: &Space, t: &TrialRecord, epochs: &HashMap<String, Vec<EpochMetrics>>) -> optuna_sqlite::Trial {
    let params = space
        .params
        .iter()
        .filter_map(|p| {
            let stored = p.dist.to_optuna(t.params.get(&p.name)?)?;
            Some((p.name.clone(), stored, p.dist.optuna_json().to_string()))
        })
        .collect();
    let intermediate: Vec<(usize, f64)> = t
        .run_id
        .as_ref()
        .and_then(|r| epochs.get(r))
        .map(|ms| ms.iter().map(|m| (m.epoch, m.val_accuracy)).collect())
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
        user_attrs: vec![("phase".into(), json!(t.phase).to_string())],
        system_attrs: vec![(SAMPLER_ATTR.into(), json!(t.sampled_by).to_string())],
        params,
        intermediate,
        value,
    }
}

/// Trial values (dots, coloured by phase; pruned in red) and the best so far (a line).
pub(crate) fn history_chart(study: &str, trials: &[TrialRecord]) -> Chart {
    let dots = |keep: &dyn Fn(&TrialRecord) -> bool| -> Vec<(f64, f64)> {
        trials.iter().filter(|t| keep(t)).filter_map(|t| t.value.map(|v| (t.number as f64, 100.0 * v))).collect()
    };
    let complete = |phase: Phase| move |t: &TrialRecord| t.state == TrialState::Complete && t.phase == phase;
    let mut best = Vec::new();
    let mut best_value = f64::NEG_INFINITY;
    for t in trials {
        if let (TrialState::Complete, Some(v)) = (t.state, t.value) {
            if v > best_value {
                if best_value.is_finite() {
                    best.push((t.number as f64, 100.0 * best_value));
                }
                best_value = v;
            }
        }
        if best_value.is_finite() {
            best.push((t.number as f64, 100.0 * best_value));
        }
    }
    let panel = Panel {
        title: format!("Optimization history: study {study}"),
        x_label: "trial".into(),
        y_label: "validation accuracy (%)".into(),
        x_ticks: XTicks::Integers,
        series: vec![
            Series::new("random", GREY, Mark::Dots, dots(&complete(Phase::Random))),
            Series::new("bayesian", BLUE, Mark::Dots, dots(&complete(Phase::Bayesian))),
            Series::new("finetune", ORANGE, Mark::Dots, dots(&complete(Phase::Finetune))),
            Series::new("pruned (best epoch so far)", RED, Mark::Crosses, dots(&|t| t.state == TrialState::Pruned)),
            Series::new("best so far", BLACK, Mark::Line, best),
        ],
    };
    Chart::new(vec![panel], 1, (800, 450))
}

/// One panel per parameter: each finished trial's value of it against the trial's validation
/// accuracy (Optuna's slice plot).
pub(crate) fn slices_chart(space: &Space, trials: &[TrialRecord]) -> Chart {
    let done: Vec<&TrialRecord> = trials.iter().filter(|t| t.state == TrialState::Complete).collect();
    let panels: Vec<Panel> = space
        .params
        .iter()
        .map(|p| {
            let names = match &p.dist {
                Distribution::Categorical { choices } => {
                    Some(choices.iter().map(|c| c.to_string().replace('"', "")).collect())
                }
                _ => None,
            };
            // A parameter searched on a log scale is shown on one: its log10.
            let log = matches!(p.dist, Distribution::Float { log: true, .. } | Distribution::Int { log: true, .. });
            let points = done
                .iter()
                .filter_map(|t| {
                    let v = t.params.get(&p.name)?;
                    let x = match (&names, log) {
                        (Some(_), _) => p.dist.to_internal(v)?,
                        (None, true) => v.as_f64()?.log10(),
                        (None, false) => v.as_f64()?,
                    };
                    Some((x, 100.0 * t.value?))
                })
                .collect();
            Panel {
                title: p.name.clone(),
                x_label: if log { format!("log10({})", p.name) } else { p.name.clone() },
                y_label: "validation accuracy (%)".into(),
                x_ticks: match names {
                    Some(n) => XTicks::Names(n),
                    None if matches!(p.dist, Distribution::Int { log: false, .. }) => XTicks::Integers,
                    None => XTicks::Numbers,
                },
                series: vec![Series::new("", BLUE, Mark::Dots, points)],
            }
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1) as u32;
    Chart::new(panels, cols, (400 * cols as u32, 300 * rows))
}
