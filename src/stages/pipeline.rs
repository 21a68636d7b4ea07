//! All five stages in order: tune, extend, analyze, train, backtest. Checks first, stops at the
//! first failure with the next step to take, and sums up what each stage made and where.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;

use super::check::{self, Status};
use super::{analyze, backtest, extend, train, tune};
use crate::layout;
use crate::model::ModelConfig;
use crate::states::TrialState;
use crate::store::{Lineage, Selection, Store};

pub struct Request {
    pub tune: tune::Request,
    pub extend: extend::Request,
    pub analyze: analyze::Request,
    /// Epochs of the final training (the selection's configuration otherwise).
    pub final_epochs: usize,
    pub final_out: std::path::PathBuf,
    pub backtest: backtest::Request,
}

/// One stage's line in the summary.
pub struct StageResult {
    pub stage: &'static str,
    pub id: String,
    pub result: String,
    pub output: String,
    pub seconds: f64,
}

/// What a stage made: its id, a line of results and where its files are.
struct Made {
    id: String,
    result: String,
    output: String,
}

/// Runs the pipeline; returns the summary of every stage that ran, or the first failure with
/// what to do next.
pub fn run(store: &Store, req: &Request) -> anyhow::Result<Vec<StageResult>> {
    preflight(store, req)?;
    let mut done = Vec::new();
    let study = stage(&mut done, "tune", NEXT_TUNE, || tune_stage(store, req))?;
    let extended = stage(&mut done, "extend", NEXT_EXTEND, || extend_stage(store, req, study))?;
    let selection = stage(&mut done, "analyze", NEXT_ANALYZE, || analyze_stage(store, req, extended))?;
    let final_dir = stage(&mut done, "train", NEXT_TRAIN, || train_stage(store, req, &selection))?;
    stage(&mut done, "backtest", "`hptune backtest`", || backtest_stage(store, req, final_dir))?;
    Ok(done)
}

const NEXT_TUNE: &str =
    "fix the cause, then `hptune pipeline --study NAME` (or `hptune tune --study NAME`) resumes the study";
const NEXT_EXTEND: &str = "fix the cause, then `hptune extend --resume ID` and the stages after it";
const NEXT_ANALYZE: &str = "`hptune analyze`, then `hptune train` and `hptune backtest`";
const NEXT_TRAIN: &str = "`hptune train` (it trains the selection), then `hptune backtest`";

/// The checks that can fail before anything is written.
fn preflight(store: &Store, req: &Request) -> anyhow::Result<()> {
    let failed: Vec<_> = check::checklist(store, &req.tune.dataset, req.tune.device, &req.tune.out_dir)?
        .into_iter()
        .filter(|c| c.stage == "tune" || c.stage == "all")
        .filter(|c| c.status == Status::Failed)
        .collect();
    if let Some(c) = failed.first() {
        bail!(
            "check failed before any stage ran: {} {}: {} (`hptune check` shows every check)",
            c.stage,
            c.item,
            c.detail
        );
    }
    Ok(())
}

/// Runs one stage: announces it, times it, adds its line to `done`, and turns a failure into one
/// that says what to do `next`.
fn stage<T>(
    done: &mut Vec<StageResult>,
    name: &'static str,
    next: &str,
    f: impl FnOnce() -> anyhow::Result<(T, Made)>,
) -> anyhow::Result<T> {
    eprintln!("== stage {}/5: {name}", done.len() + 1);
    let t = Instant::now();
    let (value, made) = f().map_err(|e| anyhow::anyhow!("stage {name} failed: {e:#}\nnext: {next}"))?;
    done.push(StageResult {
        stage: name,
        id: made.id,
        result: made.result,
        output: made.output,
        seconds: t.elapsed().as_secs_f64(),
    });
    Ok(value)
}

fn tune_stage(store: &Store, req: &Request) -> anyhow::Result<(String, Made)> {
    let summary = tune::run(store, &req.tune)?;
    // A study on a server is tuned there and copied here for the stages after it.
    if let Some(storage) = &req.tune.storage {
        let pull = super::pull::Request {
            storage: storage.clone(),
            study: Some(summary.study.clone()),
            out_dir: req.tune.out_dir.clone(),
        };
        super::pull::run(store, &pull)?;
    }
    let best = summary
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.value)
        .fold(f64::NAN, f64::max);
    if best.is_nan() {
        bail!(
            "no trial of study {} finished (see `hptune query tuning_leaderboard` and the trials' reasons)",
            summary.study
        );
    }
    let made = Made {
        id: summary.study.clone(),
        result: format!("best validation accuracy {:.2}% of {} trials", 100.0 * best, summary.trials.len()),
        output: format!("{}/", req.tune.out_dir.display()),
    };
    Ok((summary.study, made))
}

fn extend_stage(store: &Store, req: &Request, study: String) -> anyhow::Result<(String, Made)> {
    let ext = extend::Request { study: Some(study), ..req.extend.clone() };
    let outcome = extend::run(store, &ext)?;
    let made = Made {
        id: outcome.extended_run_id.clone(),
        result: format!("top {} x {}", ext.top_n, store.extended_run(&outcome.extended_run_id)?.cv().describe()),
        output: format!("{}/", ext.out_dir.display()),
    };
    Ok((outcome.extended_run_id, made))
}

fn analyze_stage(store: &Store, req: &Request, extended: String) -> anyhow::Result<(Selection, Made)> {
    let an = analyze::Request { extended_run: Some(extended), ..req.analyze.clone() };
    let analysis = analyze::run(store, &an)?;
    for line in analysis.verdict.sentences() {
        println!("{line}");
    }
    for warning in analysis.verdict.warnings() {
        eprintln!("{warning}");
    }
    let best = &analysis.best;
    let made = Made {
        id: analysis.selection.selection_id.clone(),
        result: format!(
            "trial {} ({}): cv {:.2}% +- {:.2}",
            best.trial_number,
            best.model_type,
            100.0 * best.cv_mean,
            100.0 * best.cv_std
        ),
        output: format!("{}/{}, {}/", an.out_dir.display(), layout::BEST_CONFIG, layout::ANALYSIS_PLOTS),
    };
    Ok((analysis.selection, made))
}

/// Trains the selection's configuration for `final_epochs` on the tuning's dataset and seed.
fn train_stage(store: &Store, req: &Request, selection: &Selection) -> anyhow::Result<(PathBuf, Made)> {
    let mut config = ModelConfig::from_json(&selection.best_config_json).map_err(|e| anyhow::anyhow!(e))?;
    config.epochs = req.final_epochs;
    let trained = train::run(
        store,
        &train::Request {
            config,
            config_source: format!("selection {}", selection.selection_id),
            lineage: Lineage::Selection(selection.selection_id.clone()),
            dataset: req.tune.dataset.clone(),
            seed: req.tune.seed,
            holdout: req.tune.holdout,
            device: req.tune.device,
            out_dir: req.final_out.clone(),
        },
    )?;
    let run = store.run(&trained.run_id)?;
    let made = Made {
        id: trained.run_id.clone(),
        result: format!(
            "{} epochs, validation accuracy {:.2}%",
            trained.epochs_run,
            100.0 * run.best_val_accuracy.unwrap_or(f64::NAN)
        ),
        output: format!("{}/", trained.out_dir.display()),
    };
    Ok((trained.out_dir, made))
}

/// Backtests the final model on its own tickers.
fn backtest_stage(store: &Store, req: &Request, final_dir: PathBuf) -> anyhow::Result<((), Made)> {
    let bt = backtest::Request { model_path: Some(final_dir), dataset: None, ..req.backtest.clone() };
    let tested = backtest::run(store, &bt)?;
    let stats = store.backtest_stats(&tested.backtest_id)?;
    let record = store.backtest(&tested.backtest_id)?;
    let stat = |strategy: &str, name: &str| {
        stats
            .iter()
            .find(|s| s.scope == "portfolio" && s.strategy == strategy && s.name == name)
            .and_then(|s| s.value)
            .unwrap_or(f64::NAN)
    };
    let made = Made {
        id: tested.backtest_id,
        result: format!(
            "{} .. {}: accuracy {:.2}%, return {:.2}% vs buy & hold {:.2}%, Sharpe {:.2}, {} trades",
            record.start_date,
            record.end_date,
            100.0 * record.accuracy.unwrap_or(f64::NAN),
            stat("model", "Return [%]"),
            stat("buy_and_hold", "Return [%]"),
            stat("model", "Sharpe Ratio"),
            stat("model", "# Trades")
        ),
        output: format!("{}/", bt.out_dir.display()),
    };
    Ok(((), made))
}
