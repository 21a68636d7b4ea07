//! Stage 2, extended training: the top configurations of a study, each trained on every fold of
//! a date-based cross-validation (walk-forward, purged k-fold or CPCV) with its own scaler, on the
//! dates before the study's holdout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint;
use crate::cv::{self, Cv, Fold, Scheme};
use crate::features::{self, FeatureTable, Scaler};
use crate::model::Device;
use crate::model::{self, build_samples, ModelConfig, Net};
use crate::progress::Progress;
use crate::split;
use crate::states::{FoldStatus, Role, RunStage, RunStatus, TrialState};
use crate::store::{ExtendedConfig, ExtendedRun, FoldRecord, Lineage, NewRun, PathRecord, Store};

/// Early-stopping patience of each fold.
pub const EXTEND_PATIENCE: usize = 10;

#[derive(Debug, Clone)]
pub struct Request {
    pub study: Option<String>,
    pub top_n: usize,
    pub epochs: usize,
    pub folds: usize,
    pub scheme: Scheme,
    /// Groups each cpcv split tests.
    pub test_groups: usize,
    pub embargo: usize,
    pub seed: u64,
    pub jobs: usize,
    pub device: Device,
    pub out_dir: PathBuf,
    /// Finish this extended run instead of starting one.
    pub resume: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub extended_run_id: String,
    pub moved_aside: Option<PathBuf>,
}

/// The folds every configuration of a run shares: over the samples all of them can make (the
/// longest seq_len decides the first) that end before the holdout.
pub fn plan_folds(configs: &[ModelConfig], holdout_start: usize, cv: &Cv) -> Result<Vec<Fold>, String> {
    let seq_len = configs.iter().map(|c| c.seq_len).max().unwrap_or(1);
    let first = features::WARMUP + seq_len - 1;
    let end = holdout_start.saturating_sub(cv::LABEL_HORIZON).max(first);
    cv.folds(first..end)
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    super::fail_orphaned_runs(store)?;
    super::with_heartbeat(super::renew_runs(store), || extend(store, req))
}

fn extend(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    let device = model::device(req.device)?;
    let (id, moved_aside) = match &req.resume {
        Some(id) => {
            let run = store.extended_run(id)?;
            if run.status == RunStatus::Finished {
                bail!("extended run {id} already finished; run `hptune analyze` next");
            }
            let key = super::export::EXTENDED_OWNER;
            let moved_aside = super::set_aside_unless_owned(store, &req.out_dir, key, id)?;
            store.reopen_extended_run(id)?;
            (id.clone(), moved_aside)
        }
        None => start(store, req)?,
    };
    // While this process writes into the folder, no other moves it aside.
    let _claim = crate::files::claim(&req.out_dir)?;
    let run = store.extended_run(&id)?;
    let configs: Vec<(ExtendedConfig, ModelConfig)> = store
        .extended_configs(&id)?
        .into_iter()
        .map(|c| {
            let m = ModelConfig::from_json(&c.config_json).map_err(|e| anyhow::anyhow!("stored configuration: {e}"))?;
            Ok((c, m))
        })
        .collect::<anyhow::Result<_>>()?;
    let (_, table) = load_table(store, &run.dataset_id)?;
    let hs = holdout_index(&table, run.holdout_start);
    let models: Vec<ModelConfig> = configs.iter().map(|c| c.1.clone()).collect();
    let folds = plan_folds(&models, hs, &run.cv()).map_err(|e| anyhow::anyhow!(e))?;
    let todo: Vec<FoldRecord> = store.cv_folds(&id)?.into_iter().filter(|f| f.status != FoldStatus::Finished).collect();

    std::fs::create_dir_all(&req.out_dir).with_context(|| format!("cannot create {}", req.out_dir.display()))?;
    let progress = Progress::new(format!("extend {id}"), todo.len());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..req.jobs.max(1) {
            scope.spawn(|| loop {
                if crate::interrupt::received().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(rec) = todo.get(i) else { return };
                let (cfg_row, cfg) = &configs[rec.config_rank - 1];
                let fold = &folds[rec.fold - 1];
                let result =
                    train_fold(store, &run, cfg_row, cfg, fold, &table, (&device, req.device.as_str()), &req.out_dir);
                let status = match &result {
                    Ok(acc) => format!("config {} fold {}: accuracy {:.2}%", rec.config_rank, rec.fold, 100.0 * acc),
                    Err(e) => {
                        let reason = crate::interrupt::reason(e);
                        let _ = store.fail_fold(&id, rec.config_rank, rec.fold, &reason);
                        first_error.lock().unwrap().get_or_insert(reason.clone());
                        format!("config {} fold {} failed: {reason}", rec.config_rank, rec.fold)
                    }
                };
                progress.step(done.fetch_add(1, Ordering::SeqCst) + 1, &status);
            });
        }
    });
    progress.finish();
    let status = store.end_extended_run(&id)?;
    super::export::extended(store, &id, &req.out_dir)?;
    crate::interrupt::check()?;
    if status != "finished" {
        let reason = first_error.into_inner().unwrap().unwrap_or_default();
        bail!(
            "extended run {id} did not finish every fold (first failure: {reason}); the finished folds are kept: \
             fix the cause and run `hptune extend --resume {id}`"
        );
    }
    Ok(Outcome { extended_run_id: id, moved_aside })
}

/// Records a new extended run: the study's top configurations and the folds they share.
fn start(store: &Store, req: &Request) -> anyhow::Result<(String, Option<PathBuf>)> {
    if req.top_n == 0 {
        bail!("--top-n must be at least 1");
    }
    if req.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let study_name = match &req.study {
        Some(s) => s.clone(),
        None => store
            .latest_study()?
            .with_context(|| format!("no tuning study in {}: run `hptune tune` first", store.path().display()))?,
    };
    let study = store.study(&study_name)?.with_context(|| {
        format!("no study '{study_name}' in {}: run `hptune tune --study {study_name}` first", store.path().display())
    })?;
    let (configs, models) = top_configurations(store, &study_name, req.top_n, req.epochs)?;
    let (_, table) = load_table(store, &study.dataset_id)?;
    let hs = split::holdout_start(table.dates.len(), study.holdout);
    let cv = Cv {
        scheme: req.scheme,
        folds: req.folds,
        test_groups: if req.scheme == Scheme::Cpcv { req.test_groups } else { 1 },
        embargo: req.embargo,
        horizon: cv::LABEL_HORIZON,
    };
    let folds = plan_folds(&models, hs, &cv).map_err(|e| anyhow::anyhow!("study '{study_name}': {e}"))?;
    let longest = models.iter().map(|m| m.seq_len).max().unwrap_or(1);
    super::check_memory(&table, longest, &format!("a fold with seq_len {longest}"))?;
    let fold_rows = fold_rows(&configs, &folds, &table, req.scheme);
    let path_rows = path_rows(&cv, &folds, &table);
    let d = |i: usize| table.dates[i];
    crate::files::check_writable(&req.out_dir)?;
    let id = crate::ids::new("extended");
    let moved_aside = super::set_aside(store, &req.out_dir)?;
    store.create_extended_run(
        &ExtendedRun {
            extended_run_id: id.clone(),
            study_name,
            dataset_id: study.dataset_id.clone(),
            scheme: cv.scheme,
            n_folds: cv.folds,
            test_groups: cv.test_groups,
            embargo: cv.embargo,
            label_horizon: cv.horizon,
            top_n: req.top_n,
            epochs: req.epochs,
            seed: req.seed,
            holdout_start: (hs < table.dates.len()).then(|| d(hs)),
            status: RunStatus::Running,
        },
        &configs,
        &fold_rows,
        &path_rows,
    )?;
    Ok((id, moved_aside))
}

/// The study's `top_n` COMPLETE trials by value (ties: lower number first) as configurations
/// trained for `epochs`, with their models.
fn top_configurations(
    store: &Store,
    study_name: &str,
    top_n: usize,
    epochs: usize,
) -> anyhow::Result<(Vec<ExtendedConfig>, Vec<ModelConfig>)> {
    let mut trials: Vec<_> = store
        .trials(study_name)?
        .into_iter()
        .filter(|t| t.state == TrialState::Complete && t.value.is_some())
        .collect();
    trials.sort_by(|a, b| b.value.unwrap().total_cmp(&a.value.unwrap()).then(a.number.cmp(&b.number)));
    trials.truncate(top_n);
    if trials.is_empty() {
        bail!(
            "study '{study_name}' in {} has no finished trials: run `hptune tune --study {study_name}` until some finish",
            store.path().display()
        );
    }
    let mut configs = Vec::new();
    let mut models = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let mut cfg = super::tune::trial_config(&t.params, epochs)
            .map_err(|e| anyhow::anyhow!("trial {} of {study_name}: {e}", t.number))?;
        cfg.patience = EXTEND_PATIENCE;
        configs.push(ExtendedConfig {
            config_rank: i + 1,
            trial_number: t.number,
            tuning_value: t.value.unwrap(),
            model_type: cfg.model_type.name().into(),
            config_json: cfg.to_json().to_string(),
        });
        models.push(cfg);
    }
    Ok((configs, models))
}

/// Every configuration's folds, pending.
fn fold_rows(configs: &[ExtendedConfig], folds: &[Fold], table: &FeatureTable, scheme: Scheme) -> Vec<FoldRecord> {
    let d = |i: usize| table.dates[i];
    configs
        .iter()
        .flat_map(|c| {
            folds.iter().map(move |f| {
                let (a, b) = f.train_bounds();
                let (v0, v1) = f.val_bounds();
                FoldRecord {
                    config_rank: c.config_rank,
                    fold: f.index,
                    train_span: (d(a), d(b)),
                    val_span: (d(v0), d(v1)),
                    n_train: f.n_train(),
                    n_val: f.n_val(),
                    n_purged: f.purged,
                    n_embargoed: f.embargoed,
                    test_groups: if scheme == Scheme::Cpcv { f.groups.clone() } else { Vec::new() },
                    status: FoldStatus::Pending,
                    run_id: None,
                    checkpoint_id: None,
                    epochs_run: None,
                    best_epoch: None,
                    val_loss: None,
                    val_accuracy: None,
                }
            })
        })
        .collect()
}

/// CPCV's paths as rows: which split each path takes each group from, with the group's dates.
fn path_rows(cv: &Cv, folds: &[Fold], table: &FeatureTable) -> Vec<PathRecord> {
    let mut rows = Vec::new();
    for (j, path) in cv.paths().iter().enumerate() {
        for (g, &fold) in path.iter().enumerate() {
            let f = &folds[fold - 1];
            let block = &f.val[f.groups.iter().position(|&x| x == g + 1).expect("a path's split tests its group")];
            rows.push(PathRecord {
                path: j + 1,
                test_group: g + 1,
                fold,
                group_span: (table.dates[block.start], table.dates[block.end - 1]),
            });
        }
    }
    rows
}

/// A dataset's feature table, by id.
pub fn load_table(store: &Store, dataset_id: &str) -> anyhow::Result<(String, FeatureTable)> {
    let name = store
        .dataset_by_id(dataset_id)?
        .map(|d| d.name)
        .with_context(|| format!("dataset {dataset_id} is no longer in {}", store.path().display()))?;
    let (_, panel) = store.load_panel(&name)?;
    Ok((name, features::compute(&panel)))
}

fn holdout_index(table: &FeatureTable, start: Option<chrono::NaiveDate>) -> usize {
    start.map_or(table.dates.len(), |s| table.dates.partition_point(|d| *d < s))
}

/// Trains one configuration on one fold: scaler on the fold's training dates, early stopping and
/// scoring on its validation block. Returns the validation accuracy at the best epoch.
#[allow(clippy::too_many_arguments)]
fn train_fold(
    store: &Store,
    run: &ExtendedRun,
    row: &ExtendedConfig,
    cfg: &ModelConfig,
    fold: &Fold,
    table: &FeatureTable,
    (device, device_name): (&candle_core::Device, &str),
    out_dir: &std::path::Path,
) -> anyhow::Result<f64> {
    let id = &run.extended_run_id;
    let (rank, k) = (row.config_rank, fold.index);
    let attempts = store.fold_attempts(&crate::ids::fold_run(id, rank, k, 1))?;
    let run_id = crate::ids::fold_run(id, rank, k, attempts + 1);
    let scaler = Scaler::fit(table, fold.train.iter().flat_map(|r| r.clone()));
    let samples = |ranges: &[std::ops::Range<usize>]| {
        let mut set = build_samples(table, &scaler, ranges[0].clone(), cfg);
        for r in &ranges[1..] {
            set.append(build_samples(table, &scaler, r.clone(), cfg));
        }
        set
    };
    let (train_set, val_set) = (samples(&fold.train), samples(&fold.val));
    let d = |i: usize| table.dates[i];
    let (a, b) = fold.train_bounds();
    let (v0, v1) = fold.val_bounds();
    store.begin_run(&NewRun {
        run_id: run_id.clone(),
        stage: RunStage::Extend,
        dataset_id: run.dataset_id.clone(),
        model_type: cfg.model_type.name().into(),
        config_json: cfg.to_json().to_string(),
        config_source: format!("study {} trial {} (extended run {id}, fold {k})", run.study_name, row.trial_number),
        lineage: Lineage::Fold { extended_run_id: id.clone(), config_rank: rank, fold: k },
        seed: run.seed,
        device: device_name.into(),
        tickers: table.tickers.clone(),
        train_span: (d(a), d(b)),
        val_span: (d(v0), d(v1)),
        holdout_start: run.holdout_start,
    })?;
    store.start_fold(id, rank, k, &run_id)?;
    let result = (|| -> anyhow::Result<f64> {
        let seed = run.seed.wrapping_mul(1_000_003).wrapping_add((rank * 1000 + k) as u64);
        let net =
            Net::new(cfg.shape(table.width(), table.tickers.len()), &mut ChaCha8Rng::seed_from_u64(seed), device)?;
        let outcome =
            model::train(&net, &train_set, &val_set, &cfg.settings(seed), |m| Ok(store.record_epoch(&run_id, m)?))?;
        let dir = crate::layout::fold_checkpoint_dir(out_dir, rank, id, k);
        let saved = checkpoint::save(&dir, (&run_id, Role::Best, outcome.best_epoch), &outcome.best, &scaler)?;
        // The logits follow the validation blocks in order, every ticker of a date together.
        let mut logits = outcome.best_val_logits.as_slice();
        let mut outcomes = Vec::new();
        for block in &fold.val {
            let (these, rest) = logits.split_at(block.len() * table.tickers.len());
            outcomes.extend(crate::outcomes::from_logits(table, block.clone(), these));
            logits = rest;
        }
        store.finish_run(&run_id, (outcome.epochs_run, outcome.best_epoch), std::slice::from_ref(&saved), &outcomes)?;
        store.finish_fold(id, rank, k, &saved.record.checkpoint_id)?;
        Ok(store.run(&run_id)?.best_val_accuracy.unwrap_or(f64::NAN))
    })();
    if let Err(e) = &result {
        let _ = store.fail_run(&run_id, &crate::interrupt::reason(e));
    }
    result
}
