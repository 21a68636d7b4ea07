//! Stage 1, tuning: a study of trials in three phases (quasi-random, then TPE or a Gaussian process
//! over the whole space and around the best),
//! each trial a training run on the training span (the holdout is never seen), pruned by a median
//! rule on per-epoch validation accuracy, run by `jobs` threads here and by any other process that
//! joins the study.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value as Json};

use crate::checkpoint;
use crate::costs::{self, Cost};
use crate::features::{self, FeatureTable, Scaler};
use crate::model::Device;
use crate::model::{self, build_samples, EpochMetrics, ModelConfig, Net, CONFIG_KEYS};
use crate::progress::Progress;
use crate::search::{self, Outcome, Params, Past, PhasePlan, Space};
use crate::split::Split;
use crate::states::{Role, RunStage, TrialState};
use crate::store::server::Server;
use crate::store::{Finished, Lineage, NewRun, Store, StudyHome, StudyRecord, TrialEnd, TrialRecord};

/// Median pruner settings (Optuna's MedianPruner defaults, with 3 warm-up epochs).
pub const PRUNE_STARTUP_TRIALS: usize = 5;
pub const PRUNE_WARMUP_EPOCHS: usize = 3;
/// The longest a finished epoch of a running trial waits before it is written (others read it).
pub const EPOCH_FLUSH_S: f64 = 1.0;
/// Patience of early stopping inside a trial.
pub const TRIAL_PATIENCE: usize = 5;

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
    /// The sampler of the model-based phases (new studies).
    pub sampler: search::Sampler,
    /// The search space as TOML, when not the default.
    pub space_toml: Option<String>,
    /// A PostgreSQL study server (`postgresql://...`) that keeps the study instead of the
    /// database file, shared by workers on many machines.
    pub storage: Option<String>,
    /// How often this worker renews its trials' heartbeats on a study server; a trial silent
    /// for `STALE_INTERVALS` of them is failed and queued again.
    pub heartbeat_s: u64,
    pub device: Device,
    pub out_dir: PathBuf,
    /// `--warm-start`: a study, or a reading statement returning trial rows, whose finished
    /// trials seed a new study's sampler.
    pub warm_start: Option<String>,
}

/// A study server's trial is stale after this many heartbeat intervals without one (Optuna's
/// grace period; 120 s at the default 20 s).
pub const STALE_INTERVALS: u64 = 6;

#[derive(Debug, Clone)]
pub struct Summary {
    pub study: String,
    pub orphans_failed: Vec<usize>,
    pub trials: Vec<TrialRecord>,
    /// What seeded a new study's sampler, in words (`--warm-start`).
    pub warm_start: Option<String>,
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

/// Checks that every parameter of a space is a model hyperparameter whose every value (both
/// ends of a range, each choice) is a valid configuration, so that a study never records trials
/// that fail on sizes refused up front.
pub fn check_space(space: &Space) -> Result<(), String> {
    use search::space::Distribution;
    for p in &space.params {
        if !CONFIG_KEYS.contains(&p.name.as_str()) || p.name == "epochs" || p.name == "patience" {
            return Err(format!(
                "parameter '{}' is not a tunable hyperparameter (tunable: model_type, layout, hidden_size, num_layers, \
                 dropout, learning_rate, weight_decay, batch_size, seq_len)",
                p.name
            ));
        }
        let values: Vec<Json> = match &p.dist {
            Distribution::Float { low, high, .. } => vec![json!(low), json!(high)],
            Distribution::Int { low, high, .. } => vec![json!(low), json!(high)],
            Distribution::Categorical { choices } => choices.clone(),
        };
        for v in values {
            let params: Params = [(p.name.clone(), v.clone())].into_iter().collect();
            if let Err(e) = trial_config(&params, 1) {
                return Err(format!("parameter '{}': the value {v} is out of range: {e}", p.name));
            }
        }
    }
    Ok(())
}

/// The shortest window a space's trials can have (the default configuration's when the space
/// does not tune it).
/// The shortest and longest window (`seq_len`) the space allows.
fn seq_len_range(space: &Space) -> (usize, usize) {
    use search::space::Distribution;
    let default = ModelConfig::default().seq_len;
    match space.params.iter().find(|p| p.name == "seq_len").map(|p| &p.dist) {
        Some(Distribution::Int { low, high, .. }) => ((*low).max(1) as usize, (*high).max(1) as usize),
        Some(Distribution::Float { low, high, .. }) => (low.max(1.0) as usize, high.max(1.0) as usize),
        Some(Distribution::Categorical { choices }) => {
            let lens: Vec<usize> = choices.iter().filter_map(|c| c.as_u64()).map(|v| v.max(1) as usize).collect();
            (lens.iter().copied().min().unwrap_or(default), lens.iter().copied().max().unwrap_or(default))
        }
        None => (default, default),
    }
}

/// A study name names its checkpoint folder, so it is a plain file name.
fn check_study_name(name: &str) -> anyhow::Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(plain) {
        bail!(
            "--study '{name}': a study name is letters, digits, '.', '_' and '-' (not first '.'), as it names a folder"
        );
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

/// Resumes a recorded study, raising its trial budget to `--trials` when that is larger.
fn resume_study(store: &Store, home: StudyHome, req: &Request, s: StudyRecord) -> anyhow::Result<StudyRecord> {
    if let (StudyHome::Local(_), Some(server)) = (home, store.pulled_from(&s.study_name)?) {
        bail!(
            "study {} was pulled from {server}: its trials are added there (`hptune tune --storage URL --study {}`), \
             then `hptune pull` copies them here",
            s.study_name,
            s.study_name
        );
    }
    // Resuming an older study where a newer one exported: the newer one's folder is kept.
    let key = super::export::TUNING_OWNER;
    if let Some(moved) = super::set_aside_unless_owned(store, &req.out_dir, key, &s.study_name)? {
        eprintln!("kept another study's {} as {}", req.out_dir.display(), moved.display());
    }
    if req.trials > s.n_trials {
        home.set_study_trials(&s, req.trials)?;
    }
    home.study(&s.study_name)?.with_context(|| format!("study {} is no longer in the database", s.study_name))
}

/// Creates a new study after checking everything it needs: the space, the phases, the name, and a
/// dataset that leaves enough samples before the holdout for the shortest window the space allows
/// (else every trial would fail).
/// Returns the study, and what seeded it in words (`--warm-start`).
fn create_study(store: &Store, home: StudyHome, req: &Request) -> anyhow::Result<(StudyRecord, Option<String>)> {
    if req.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let space_toml = req.space_toml.clone().unwrap_or_else(|| search::space::DEFAULT_TOML.trim_start().to_string());
    let space = Space::from_toml(&space_toml).map_err(|e| anyhow::anyhow!("search space: {e}"))?;
    check_space(&space).map_err(|e| anyhow::anyhow!("search space: {e}"))?;
    let plan = resolve_plan(req.trials, req.phases)?;
    if let Some(name) = &req.study {
        check_study_name(name)?;
    }
    let seeds = match (&req.warm_start, home) {
        (None, _) => None,
        (Some(_), StudyHome::Server(_)) => {
            bail!("--warm-start seeds a study in the database file; a study on a study server starts cold")
        }
        (Some(spec), StudyHome::Local(_)) => Some((spec, super::warm_start::pick(store, spec, &space)?)),
    };
    let dataset = store.dataset(&req.dataset)?;
    // Every trial would fail if even the shortest window the space allows left too few
    // samples before the holdout: refused before the study exists.
    let (_, panel) = store.load_panel(&dataset.name)?;
    let table = features::compute(&panel);
    let (shortest, longest) = seq_len_range(&space);
    Split::new(&table, shortest, req.holdout)
        .map_err(|e| anyhow::anyhow!("dataset {} with --holdout {}: {e}", dataset.name, req.holdout))?;
    // Nor may the longest window need more memory than the machine has.
    super::check_memory(&table, longest, &format!("a trial with seq_len {longest} on dataset {}", dataset.name))?;
    crate::files::check_writable(&req.out_dir)?;
    let name = req.study.clone().unwrap_or_else(|| crate::ids::new("study"));
    // A new study's outputs do not overwrite an earlier study's.
    if let Some(moved) = super::set_aside(store, &req.out_dir)? {
        eprintln!("kept the previous {} as {}", req.out_dir.display(), moved.display());
    }
    if let StudyHome::Server(server) = home {
        let mut long_csv = Vec::new();
        crate::data::write_long_csv(&panel, &mut long_csv)?;
        let long_csv = String::from_utf8(long_csv).expect("CSV of UTF-8 names and numbers");
        server.put_dataset(&dataset.dataset_id, &dataset.name, &dataset.source, &long_csv)?;
    }
    let created = home.create_study(&StudyRecord {
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
                sampler: req.sampler,
                sampler_json: json!({
                    "sampler": req.sampler.as_str(),
                    "resolved": req.sampler.resolve(&space).as_str(),
                    "phases": {"random": "scrambled Halton", "bayesian": "the sampler over the whole space", "finetune": "the sampler in the box around the best 20%"},
                    "tpe": {"n_ei_candidates": search::tpe::N_CANDIDATES, "gamma": "min(ceil(0.1 n), 25)", "constant_liar": true,
                            "model": "numeric parameters jointly, categorical ones independently"},
                    "gp": {"kernel": "ARD Matern-5/2 (Hamming for categorical parameters), fitted noise", "fit": "max log marginal likelihood + priors, L-BFGS",
                           "acquisition": "log expected improvement less w log(epoch cost), w from 1 at the first model-based trial to 0 at the last", "n_candidates": search::gp::N_CANDIDATES, "running_trials": "kriging believer"},
                    "pruner": {"kind": "median", "n_startup_trials": PRUNE_STARTUP_TRIALS, "n_warmup_steps": PRUNE_WARMUP_EPOCHS,
                               "metric": "val_accuracy", "enabled": req.pruning},
                })
                .to_string(),
            })?;
    if let Some((_, picked)) = &seeds {
        store.record_seeds(&created.study_name, &picked.seeds)?;
    }
    Ok((created, seeds.map(|(spec, picked)| picked.describe(spec))))
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Summary> {
    let mut heartbeat_s = req.heartbeat_s.max(1);
    let mut server =
        req.storage.as_deref().map(|url| Server::connect(url, (STALE_INTERVALS * heartbeat_s) as f64)).transpose()?;
    // One study, one heartbeat: a study that exists keeps the interval it was created with, so
    // that no worker judges another's live trial stale by a shorter grace.
    if let (Some(s), Some(url), Some(name)) = (&server, req.storage.as_deref(), req.study.as_deref()) {
        let grace = s.study_grace(name)?.filter(|&g| g != (STALE_INTERVALS * heartbeat_s) as f64);
        if let Some(grace) = grace {
            let interval = ((grace / STALE_INTERVALS as f64).round() as u64).max(1);
            eprintln!(
                "note: study {name} keeps its heartbeat interval of {interval} s (grace {grace} s), not --heartbeat-interval {heartbeat_s}"
            );
            heartbeat_s = interval;
            server = Some(Server::connect(url, grace)?);
        }
    }
    let home = match &server {
        Some(server) => StudyHome::Server(server),
        None => StudyHome::Local(store),
    };
    let device = model::device(req.device)?;
    let study = match &req.study {
        Some(name) => match home.study(name)? {
            Some(_) if req.warm_start.is_some() => {
                bail!("--warm-start seeds a new study; study {name} exists (choose a new --study name)")
            }
            Some(s) => (resume_study(store, home, req, s)?, None),
            None => create_study(store, home, req)?,
        },
        None => create_study(store, home, req)?,
    };
    let (study, warm_start) = study;
    super::fail_orphaned_runs(store)?;
    let orphans_failed = home.fail_orphans(&study.study_name)?;
    let space = Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("stored search space: {e}"))?;
    let dataset_name = match (store.dataset_by_id(&study.dataset_id)?, &server) {
        (Some(d), _) => d.name,
        (None, Some(server)) => super::pull::ensure_dataset(store, server, &study)?,
        (None, None) => bail!("the study's dataset is no longer in the database"),
    };
    let (_, panel) = store.load_panel(&dataset_name)?;
    let table = costs::time(Cost::Features, || features::compute(&panel));
    if server.is_none() {
        record_baselines(store, &study, &space, &table)?;
    }
    // While this process writes into the folder, no other moves it aside.
    let _claim = crate::files::claim(&req.out_dir)?;
    std::fs::create_dir_all(crate::layout::study_checkpoints_dir(&req.out_dir, &study.study_name))?;

    let worker = crate::workers::name();
    let progress = Progress::new(format!("tune {}", study.study_name), study.n_trials.max(req.trials));
    let jobs = req.jobs.max(1);
    // The heartbeat covers this worker's RUNNING trials and their training runs. With a study
    // server the two beat apart: the server's never waits on the local file (which a reader may
    // hold for minutes), so no other machine fails this one's live trials.
    let beat_trials = || home.heartbeat(&study.study_name, &worker);
    let beat_runs = || store.heartbeat_runs(&worker);
    let trial = Trial { home, study: &study, table: &table, device: &device, req };
    let local_every = std::time::Duration::from_secs(crate::workers::HEARTBEAT_EVERY_S);
    let work = || {
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let handles: Vec<_> =
                (0..jobs).map(|_| scope.spawn(|| worker_loop(&trial, &space, &worker, &progress))).collect();
            handles.into_iter().try_for_each(|h| h.join().expect("worker thread panicked"))
        })
    };
    let result = match &server {
        Some(_) => {
            let server_every = std::time::Duration::from_secs(heartbeat_s);
            super::with_heartbeat_every(server_every, beat_trials, || {
                super::with_heartbeat_every(local_every, beat_runs, work)
            })
        }
        None => super::with_heartbeat_every(local_every, beat_trials, work),
    };
    progress.finish();
    result?;
    if let Some(server) = &server {
        eprintln!(
            "the study is kept on {}; `hptune pull --storage URL --study {}` copies it into {}",
            server.name(),
            study.study_name,
            store.path().display()
        );
    } else {
        costs::time(Cost::Export, || super::export::tuning(store, &study.study_name, &req.out_dir))?;
    }
    Ok(Summary { study: study.study_name.clone(), orphans_failed, trials: home.trials(&study)?, warm_start })
}

/// Scores the baselines on the study's widest validation span (that of the shortest window its
/// space allows; every trial's validation dates lie inside it) and records them, once per study.
fn record_baselines(store: &Store, study: &StudyRecord, space: &Space, table: &FeatureTable) -> anyhow::Result<()> {
    if !store.baselines(&study.study_name)?.is_empty() {
        return Ok(());
    }
    let (shortest, _) = seq_len_range(space);
    let split = Split::new(table, shortest, study.holdout).map_err(|e| anyhow::anyhow!("{e}"))?;
    let scored = costs::time(Cost::Features, || crate::baselines::score(table, split.train.clone(), split.val.clone()));
    let span = (table.dates[split.val.start], table.dates[split.val.end - 1]);
    let (records, outcomes): (Vec<_>, Vec<_>) = scored
        .into_iter()
        .map(|b| {
            let outcomes = crate::outcomes::per_date(table, split.val.clone(), &b.probs);
            let record = crate::store::BaselineRecord {
                name: b.name.to_string(),
                description: b.description.to_string(),
                source: crate::ids::baseline(&study.study_name, b.name),
                val_span: span,
                summary: crate::outcomes::summary(&outcomes),
            };
            (record, outcomes)
        })
        .unzip();
    Ok(store.record_baselines(&study.study_name, &records, &outcomes)?)
}

/// What every trial of this run shares.
struct Trial<'a> {
    home: StudyHome<'a>,
    study: &'a StudyRecord,
    table: &'a FeatureTable,
    device: &'a candle_core::Device,
    req: &'a Request,
}

fn worker_loop(trial: &Trial, space: &Space, worker: &str, progress: &Progress) -> anyhow::Result<()> {
    let (home, study) = (trial.home, trial.study);
    // Seed trials (`--warm-start`): the Bayesian phase's sampler reads them first, as finished
    // observations (`warm_start` says why that phase only).
    let seeds: Vec<Past> = match home {
        StudyHome::Local(store) => store.seeds(&study.study_name)?,
        StudyHome::Server(_) => Vec::new(),
    }
    .into_iter()
    .map(|s| Past { params: s.params, outcome: Outcome::Value(s.value) })
    .collect();
    // A trial's cost for the GP: its epoch's (every parameter of a checked space makes a valid
    // configuration).
    let cost = |params: &Params| {
        trial_config(params, study.epochs).map_or(1.0, |c| c.epoch_cost(trial.table.width(), trial.table.tickers.len()))
    };
    loop {
        crate::interrupt::check()?;
        let claim = home.claim_trial(study, worker, study.n_trials.max(10), |number, trials| {
            let seeded = if study.plan.phase_of(number) == search::Phase::Bayesian { seeds.as_slice() } else { &[] };
            let past: Vec<Past> = seeded
                .iter()
                .cloned()
                .chain(trials.iter().map(|t| Past {
                    params: t.params.clone(),
                    outcome: match (t.state, t.value) {
                        (TrialState::Running, _) => Outcome::Running,
                        (TrialState::Fail, _) | (_, None) => Outcome::Failed,
                        (_, Some(v)) => Outcome::Value(v),
                    },
                }))
                .collect();
            costs::time(Cost::Sampler, || {
                if crate::interrupt::injected("slow-sampler") {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                search::suggest(space, &study.plan, (study.seed, study.sampler), number, true, &past, Some(&cost))
            })
        })?;
        let Some((number, search::Suggestion { phase, params, .. })) = claim else {
            // No more trials to claim, or a signal arrived while waiting for others' to end.
            crate::interrupt::check()?;
            return Ok(());
        };
        let end = match run_trial(trial, number, &params) {
            Ok(end) => end,
            Err(e) => {
                let end = TrialEnd {
                    state: TrialState::Fail,
                    value: None,
                    val_loss: None,
                    pruned_epoch: None,
                    reason: Some(crate::interrupt::reason(&e)),
                };
                home.end_trial(&study.study_name, number, &end)?;
                if let Some(i) = crate::interrupt::is_interrupted(&e) {
                    return Err(i.into());
                }
                end
            }
        };
        let (done, best) = home.trial_progress(&study.study_name)?;
        progress.step(
            done,
            &format!(
                "trial {number} {} {} {}, best {}",
                phase.as_str(),
                end.state,
                fmt_value(end.value),
                fmt_value(best)
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

fn run_trial(trial: &Trial, number: usize, params: &Params) -> anyhow::Result<TrialEnd> {
    let Trial { home, study, table, device, req } = *trial;
    let cfg = trial_config(params, study.epochs).map_err(|e| anyhow::anyhow!("parameters out of range: {e}"))?;
    let split = Split::new(table, cfg.seq_len, study.holdout).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (scaler, train_set, val_set) = costs::time(Cost::Features, || {
        let scaler = Scaler::fit(table, features::WARMUP..split.train.end);
        let train_set = build_samples(table, &scaler, split.train.clone(), &cfg);
        let val_set = build_samples(table, &scaler, split.val.clone(), &cfg);
        (scaler, train_set, val_set)
    });
    let run = trial_run(study, number, table, &split, &cfg, req.device.as_str());
    home.begin_trial_run(&study.study_name, number, &run)?;
    let run_id = run.run_id;
    let trial_seed = study.seed.wrapping_mul(1_000_003).wrapping_add(number as u64);
    let net =
        Net::new(cfg.shape(table.width(), table.tickers.len()), &mut ChaCha8Rng::seed_from_u64(trial_seed), device)?;
    // Epoch rows are written at most every EPOCH_FLUSH_S while the trial runs (so that others see
    // its progress) and the rest with the trial's end, in one transaction.
    let mut epochs: Vec<EpochMetrics> = Vec::new();
    let mut recorded = 0;
    let mut flushed = std::time::Instant::now();
    let result = model::train(&net, &train_set, &val_set, &cfg.settings(trial_seed), |m| {
        epochs.push(m.clone());
        if flushed.elapsed().as_secs_f64() >= EPOCH_FLUSH_S {
            home.record_epochs(&study.study_name, number, &run_id, &epochs[recorded..])?;
            recorded = epochs.len();
            flushed = std::time::Instant::now();
        }
        prune(home, study, m.epoch, &epochs)
    });
    let (end, checkpoints, best_epoch, outcomes) = match result {
        Ok(outcome) => {
            let dir = crate::layout::trial_checkpoint_dir(&req.out_dir, &study.study_name, number);
            let saved = costs::time(Cost::Checkpoint, || {
                checkpoint::save(&dir, (&run_id, Role::Best, outcome.best_epoch), &outcome.best, &scaler)
            })?;
            let best = &epochs[outcome.best_epoch - 1];
            let outcomes = crate::outcomes::from_logits(table, split.val.clone(), &outcome.best_val_logits);
            (ended(TrialState::Complete, best, None), vec![saved], outcome.best_epoch, outcomes)
        }
        Err(e) => match e.downcast_ref::<Pruned>() {
            Some(p) => {
                // The epoch with the lowest validation loss (the first of equals), as training picks it.
                let best =
                    epochs.iter().reduce(|b, e| if e.val_loss < b.val_loss { e } else { b }).expect("an epoch ran");
                (ended(TrialState::Pruned, best, Some(p)), Vec::new(), best.epoch, Vec::new())
            }
            None => {
                let _ = home.record_epochs(&study.study_name, number, &run_id, &epochs[recorded..]);
                let _ = home.fail_run(&run_id, &crate::interrupt::reason(&e));
                return Err(e);
            }
        },
    };
    let run = (run_id.as_str(), &epochs[recorded..], epochs.len(), best_epoch, checkpoints.as_slice());
    if let Finished::AlreadyEnded { state } = home.finish_trial(&study.study_name, number, run, &outcomes, &end)? {
        eprintln!("trial {number} was already marked {state} by another process; its result is kept as a note");
    }
    Ok(end)
}

/// The training run of a trial: its spans, tickers and configuration, for lineage.
fn trial_run(
    study: &StudyRecord,
    number: usize,
    table: &FeatureTable,
    split: &Split,
    cfg: &ModelConfig,
    device: &str,
) -> NewRun {
    let d = |i: usize| table.dates[i];
    NewRun {
        run_id: crate::ids::trial_run(&study.study_name, number),
        stage: RunStage::Tune,
        dataset_id: study.dataset_id.clone(),
        model_type: cfg.model_type.name().into(),
        config_json: cfg.to_json().to_string(),
        config_source: format!("study {} trial {number}", study.study_name),
        lineage: Lineage::Trial { study: study.study_name.clone(), number },
        seed: study.seed,
        device: device.to_string(),
        tickers: table.tickers.clone(),
        train_span: (d(split.train.start), d(split.train.end - 1)),
        val_span: (d(split.val.start), d(split.val.end - 1)),
        holdout_start: (split.holdout_start < table.dates.len()).then(|| d(split.holdout_start)),
    }
}

/// The median pruner: after the warm-up epochs and once enough trials have completed, a trial
/// whose best validation accuracy so far is below the median of the others' at this epoch stops.
fn prune(home: StudyHome, study: &StudyRecord, epoch: usize, epochs: &[EpochMetrics]) -> anyhow::Result<()> {
    if !study.pruning || epoch < PRUNE_WARMUP_EPOCHS {
        return Ok(());
    }
    let mut others = home.completed_values_at(&study.study_name, epoch)?;
    if others.len() < PRUNE_STARTUP_TRIALS {
        return Ok(());
    }
    others.sort_by(f64::total_cmp);
    let median = crate::stats::percentile_sorted(&others, 50.0);
    let best_acc = epochs.iter().map(|e| e.val_accuracy).fold(f64::NEG_INFINITY, f64::max);
    if best_acc < median {
        return Err(Pruned { epoch, value: best_acc, median }.into());
    }
    Ok(())
}

/// A trial's end in `state`, valued by its `best` epoch.
fn ended(state: TrialState, best: &EpochMetrics, pruned: Option<&Pruned>) -> TrialEnd {
    TrialEnd {
        state,
        value: Some(best.val_accuracy),
        val_loss: Some(best.val_loss),
        pruned_epoch: pruned.map(|p| p.epoch as i32),
        reason: pruned.map(|p| p.to_string()),
    }
}
