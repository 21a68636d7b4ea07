//! Stage 1, tuning: a study of trials in three phases (quasi-random, TPE, TPE around the best),
//! each trial a training run on the training span (the holdout is never seen), pruned by a median
//! rule on per-epoch validation accuracy, run by `jobs` threads here and by any other process that
//! joins the study.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value as Json};

use crate::checkpoint;
use crate::features::{self, FeatureTable, Scaler};
use crate::model::{self, build_samples, ModelConfig, Net, CONFIG_KEYS};
use crate::progress::Progress;
use crate::search::{self, Params, Past, PhasePlan, Space};
use crate::split::Split;
use crate::store::{NewRun, Store, StudyRecord, TrialEnd, TrialRecord};

/// Median pruner settings (Optuna's MedianPruner defaults, with 3 warm-up epochs).
pub const PRUNE_STARTUP_TRIALS: usize = 5;
pub const PRUNE_WARMUP_EPOCHS: usize = 3;
/// Patience of early stopping inside a trial.
pub const TRIAL_PATIENCE: usize = 5;
/// A heartbeat older than this marks a RUNNING trial of another host as orphaned.
pub const STALE_HEARTBEAT_S: f64 = 600.0;

#[derive(Debug, Clone)]
pub struct Request {
    pub study: Option<String>,
    pub dataset: String,
    pub trials: usize,
    /// Per-phase overrides of the default split.
    pub phases: [Option<usize>; 3],
    pub jobs: usize,
    pub seed: u64,
    pub epochs: usize,
    pub holdout: f64,
    pub pruning: bool,
    /// The search space as TOML, when not the default.
    pub space_toml: Option<String>,
    pub device: String,
    pub out_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub study: String,
    pub orphans_failed: Vec<usize>,
    pub trials: Vec<TrialRecord>,
}

/// This process's worker name: host:pid.
pub fn worker_name() -> String {
    format!("{}:{}", host(), std::process::id())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A RUNNING trial is orphaned when its worker process on this host is gone, or a worker
/// elsewhere has not sent a heartbeat for STALE_HEARTBEAT_S.
fn orphaned(t: &TrialRecord) -> bool {
    let (h, pid) = t.worker.rsplit_once(':').unwrap_or(("", ""));
    if h == host() {
        let pid: u32 = pid.parse().unwrap_or(0);
        return pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists();
    }
    t.heartbeat_age_s > STALE_HEARTBEAT_S
}

/// The model configuration a trial trains: the space's parameters over the defaults.
pub fn trial_config(params: &Params, epochs: usize) -> Result<ModelConfig, String> {
    let mut map: Map<String, Json> = match ModelConfig::default().to_json() {
        Json::Object(m) => m,
        _ => unreachable!(),
    };
    map.insert("epochs".into(), json!(epochs));
    map.insert("patience".into(), json!(TRIAL_PATIENCE));
    for (k, v) in params {
        map.insert(k.clone(), v.clone());
    }
    ModelConfig::from_map(&map)
}

/// Checks that every parameter of a space is a model hyperparameter.
pub fn check_space(space: &Space) -> Result<(), String> {
    for p in &space.params {
        if !CONFIG_KEYS.contains(&p.name.as_str()) || p.name == "epochs" || p.name == "patience" {
            return Err(format!(
                "parameter '{}' is not a tunable hyperparameter (tunable: model_type, hidden_size, num_layers, dropout, \
                 learning_rate, weight_decay, batch_size, seq_len)",
                p.name
            ));
        }
    }
    Ok(())
}

fn resolve_plan(total: usize, overrides: [Option<usize>; 3]) -> anyhow::Result<PhasePlan> {
    let mut plan = PhasePlan::split(total);
    match overrides {
        [None, None, None] => {}
        [r, b, f] => {
            let random = r.unwrap_or(plan.random);
            let finetune = f.unwrap_or(plan.finetune);
            let bayesian = b.unwrap_or(total.saturating_sub(random + finetune));
            plan = PhasePlan { random, bayesian, finetune };
            if plan.total() != total {
                bail!(
                    "the phases add up to {} trials (random {random}, bayesian {bayesian}, finetune {finetune}), not --trials {total}",
                    plan.total()
                );
            }
        }
    }
    if plan.random == 0 {
        bail!("--random-trials must be at least 1: the Bayesian phase needs finished trials to model");
    }
    Ok(plan)
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Summary> {
    let device = model::device(&req.device)?;
    let existing = match &req.study {
        Some(name) => store.study(name)?,
        None => None,
    };
    let study = match existing {
        Some(s) => {
            if req.trials > s.n_trials {
                store.set_study_trials(&s.study_name, req.trials)?;
            }
            store.study(&s.study_name)?.unwrap()
        }
        None => {
            if req.trials == 0 {
                bail!("--trials must be at least 1");
            }
            let space_toml =
                req.space_toml.clone().unwrap_or_else(|| search::space::DEFAULT_TOML.trim_start().to_string());
            let space = Space::from_toml(&space_toml).map_err(|e| anyhow::anyhow!("search space: {e}"))?;
            check_space(&space).map_err(|e| anyhow::anyhow!("search space: {e}"))?;
            let plan = resolve_plan(req.trials, req.phases)?;
            let dataset = store.dataset(&req.dataset)?;
            let name =
                req.study.clone().unwrap_or_else(|| format!("study-{}", chrono::Local::now().format("%Y%m%d-%H%M%S")));
            // A new study's outputs do not overwrite an earlier study's.
            let old_abs = std::fs::canonicalize(&req.out_dir).ok();
            if let Some(moved) = super::move_aside(&req.out_dir)? {
                eprintln!("kept the previous {} as {}", req.out_dir.display(), moved.display());
                if let Some(old) = old_abs {
                    store.relocate_checkpoints(
                        &old.to_string_lossy(),
                        &std::fs::canonicalize(&moved)?.to_string_lossy(),
                    )?;
                }
            }
            store.create_study(&StudyRecord {
                study_name: name,
                direction: "maximize".into(),
                dataset_id: dataset.dataset_id,
                space_toml,
                n_trials: req.trials,
                plan,
                seed: req.seed,
                epochs: req.epochs,
                holdout: req.holdout,
                pruning: req.pruning,
                sampler_json: json!({
                    "phases": {"random": "scrambled Halton", "bayesian": "TPE: numeric parameters jointly, categorical ones independently", "finetune": "TPE in the box around the best 20%"},
                    "tpe": {"n_ei_candidates": search::tpe::N_CANDIDATES, "gamma": "min(ceil(0.1 n), 25)", "constant_liar": true},
                    "pruner": {"kind": "median", "n_startup_trials": PRUNE_STARTUP_TRIALS, "n_warmup_steps": PRUNE_WARMUP_EPOCHS,
                               "metric": "val_accuracy", "enabled": req.pruning},
                })
                .to_string(),
            })?
        }
    };
    let orphans_failed = store.fail_orphans(&study.study_name, orphaned)?;
    let space = Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("stored search space: {e}"))?;
    let dataset_name = store
        .dataset_by_id(&study.dataset_id)?
        .map(|d| d.name)
        .context("the study's dataset is no longer in the database")?;
    let (_, panel) = store.load_panel(&dataset_name)?;
    let table = features::compute(&panel);
    std::fs::create_dir_all(req.out_dir.join("checkpoints"))?;

    let worker = worker_name();
    let progress = Progress::new(format!("tune {}", study.study_name), study.n_trials.max(req.trials));
    let jobs = req.jobs.max(1);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..jobs)
            .map(|_| scope.spawn(|| worker_loop(store, &study, &space, &table, &device, &worker, req, &progress)))
            .collect();
        for h in handles {
            h.join().expect("worker thread panicked")?;
        }
        Ok(())
    })?;
    progress.finish();
    super::export::tuning(store, &study.study_name, &req.out_dir)?;
    Ok(Summary { study: study.study_name.clone(), orphans_failed, trials: store.trials(&study.study_name)? })
}

#[allow(clippy::too_many_arguments)]
fn worker_loop(
    store: &Store,
    study: &StudyRecord,
    space: &Space,
    table: &FeatureTable,
    device: &candle_core::Device,
    worker: &str,
    req: &Request,
    progress: &Progress,
) -> anyhow::Result<()> {
    loop {
        let claim = store.claim_trial(study, worker, study.n_trials.max(10), |number, trials| {
            let past: Vec<Past> = trials
                .iter()
                .filter(|t| t.state != "FAIL")
                .map(|t| Past { params: t.params.clone(), value: if t.state == "RUNNING" { None } else { t.value } })
                .collect();
            search::suggest(space, &study.plan, study.seed, number, true, &past)
        })?;
        let Some((number, phase, params)) = claim else { return Ok(()) };
        let end = run_trial(store, study, table, device, number, &params, req).unwrap_or_else(|e| TrialEnd {
            state: "FAIL",
            value: None,
            val_loss: None,
            pruned_epoch: None,
            reason: Some(format!("{e:#}")),
        });
        store.end_trial(&study.study_name, number, &end)?;
        let trials = store.trials(&study.study_name)?;
        let done = trials.iter().filter(|t| t.state == "COMPLETE" || t.state == "PRUNED").count();
        let best = trials.iter().filter(|t| t.state == "COMPLETE").filter_map(|t| t.value).fold(f64::NAN, f64::max);
        progress.step(
            done,
            &format!(
                "trial {number} {} {} {}, best {:.2}%",
                phase.name(),
                end.state,
                fmt_value(end.value),
                100.0 * best
            ),
        );
    }
}

fn fmt_value(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

/// Why a trial stopped early: the median pruner's verdict.
#[derive(Debug)]
struct Pruned {
    epoch: usize,
    value: f64,
    median: f64,
}

impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pruned at epoch {}: best validation accuracy {:.4} below the median {:.4}",
            self.epoch, self.value, self.median
        )
    }
}

impl std::error::Error for Pruned {}

fn run_trial(
    store: &Store,
    study: &StudyRecord,
    table: &FeatureTable,
    device: &candle_core::Device,
    number: usize,
    params: &Params,
    req: &Request,
) -> anyhow::Result<TrialEnd> {
    let cfg = trial_config(params, study.epochs).map_err(|e| anyhow::anyhow!("parameters out of range: {e}"))?;
    let split = Split::new(table, cfg.seq_len, study.holdout).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scaler = Scaler::fit(table, features::WARMUP..split.train.end);
    let train_set = build_samples(table, &scaler, split.train.clone(), cfg.seq_len);
    let val_set = build_samples(table, &scaler, split.val.clone(), cfg.seq_len);
    let run_id = format!("{}/trial-{number}", study.study_name);
    let d = |i: usize| table.dates[i];
    store.begin_run(&NewRun {
        run_id: run_id.clone(),
        stage: "tune".into(),
        dataset_id: study.dataset_id.clone(),
        model_type: cfg.model_type.name().into(),
        config_json: cfg.to_json().to_string(),
        config_source: format!("study {} trial {number}", study.study_name),
        seed: study.seed,
        device: req.device.clone(),
        tickers: table.tickers.clone(),
        train_span: (d(split.train.start), d(split.train.end - 1)),
        val_span: (d(split.val.start), d(split.val.end - 1)),
        holdout_start: (split.holdout_start < table.dates.len()).then(|| d(split.holdout_start)),
    })?;
    store.set_trial_run(&study.study_name, number, &run_id)?;
    let trial_seed = study.seed.wrapping_mul(1_000_003).wrapping_add(number as u64);
    let net =
        Net::new(cfg.shape(table.width(), table.tickers.len()), &mut ChaCha8Rng::seed_from_u64(trial_seed), device)?;
    let settings = cfg.settings(trial_seed);
    let mut best_acc = f64::NEG_INFINITY;
    let result = model::train(&net, &train_set, &val_set, &settings, |m| {
        store.record_trial_epoch(&study.study_name, number, &run_id, m)?;
        best_acc = best_acc.max(m.val_accuracy);
        if study.pruning && m.epoch >= PRUNE_WARMUP_EPOCHS {
            let mut others = store.completed_values_at(&study.study_name, m.epoch)?;
            if others.len() >= PRUNE_STARTUP_TRIALS {
                others.sort_by(f64::total_cmp);
                let median = percentile50(&others);
                if best_acc < median {
                    return Err(Pruned { epoch: m.epoch, value: best_acc, median }.into());
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(outcome) => {
            let dir = req.out_dir.join("checkpoints").join(format!("trial_{number}"));
            let record = checkpoint::save(store, &dir, (&run_id, "best", outcome.best_epoch), &outcome.best, &scaler)?;
            store.finish_run(&run_id, outcome.epochs_run, outcome.best_epoch, &[record])?;
            let run = store.run(&run_id)?;
            Ok(TrialEnd {
                state: "COMPLETE",
                value: run.best_val_accuracy,
                val_loss: run.best_val_loss,
                pruned_epoch: None,
                reason: None,
            })
        }
        Err(e) => match e.downcast_ref::<Pruned>() {
            Some(p) => {
                let metrics = store.epoch_metrics(&run_id)?;
                let best =
                    metrics.iter().min_by(|a, b| a.val_loss.total_cmp(&b.val_loss)).expect("pruned after an epoch");
                store.finish_run(&run_id, metrics.len(), best.epoch, &[])?;
                Ok(TrialEnd {
                    state: "PRUNED",
                    value: Some(best.val_accuracy),
                    val_loss: Some(best.val_loss),
                    pruned_epoch: Some(p.epoch as i32),
                    reason: Some(p.to_string()),
                })
            }
            None => {
                let _ = store.fail_run(&run_id, &format!("{e:#}"));
                Err(e)
            }
        },
    }
}

/// numpy's median (linear interpolation) of sorted values.
fn percentile50(sorted: &[f64]) -> f64 {
    let pos = 0.5 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}
