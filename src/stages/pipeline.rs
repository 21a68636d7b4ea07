//! All five stages in order: tune, extend, analyze, train, backtest. Checks first, stops at the
//! first failure with the next step to take, and sums up what each stage made and where.

use std::time::Instant;

use anyhow::bail;

use super::check::{self, Status};
use super::{analyze, backtest, extend, train, tune};
use crate::model::ModelConfig;
use crate::store::Store;

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

/// Runs the pipeline; returns the summary of every stage that ran, or the first failure with
/// what to do next.
pub fn run(store: &Store, req: &Request) -> anyhow::Result<Vec<StageResult>> {
    let failed: Vec<_> = check::checklist(store, &req.tune.dataset, &req.tune.device, &req.tune.out_dir)?
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
    let mut done = Vec::new();
    let step = |n: usize, name: &str| eprintln!("== stage {n}/5: {name}");
    let fail = |stage: &str, e: anyhow::Error, next: &str| -> anyhow::Error {
        anyhow::anyhow!("stage {stage} failed: {e:#}\nnext: {next}")
    };

    step(1, "tune");
    let t = Instant::now();
    let summary = tune::run(store, &req.tune).map_err(|e| {
        fail(
            "tune",
            e,
            "fix the cause, then `hptune pipeline --study NAME` (or `hptune tune --study NAME`) resumes the study",
        )
    })?;
    let best = summary.trials.iter().filter(|t| t.state == "COMPLETE").filter_map(|t| t.value).fold(f64::NAN, f64::max);
    if best.is_nan() {
        bail!("stage tune finished no trial of study {} (see `hptune query tuning_leaderboard` and the trials' reasons)\nnext: fix the cause and rerun", summary.study);
    }
    done.push(StageResult {
        stage: "tune",
        id: summary.study.clone(),
        result: format!("best validation accuracy {:.2}% of {} trials", 100.0 * best, summary.trials.len()),
        output: format!("{}/", req.tune.out_dir.display()),
        seconds: t.elapsed().as_secs_f64(),
    });

    step(2, "extend");
    let t = Instant::now();
    let ext = extend::Request { study: Some(summary.study.clone()), ..req.extend.clone() };
    let outcome = extend::run(store, &ext)
        .map_err(|e| fail("extend", e, "fix the cause, then `hptune extend --resume ID` and the stages after it"))?;
    done.push(StageResult {
        stage: "extend",
        id: outcome.extended_run_id.clone(),
        result: format!("top {} x {} {} folds", ext.top_n, ext.folds, ext.scheme.name()),
        output: format!("{}/", ext.out_dir.display()),
        seconds: t.elapsed().as_secs_f64(),
    });

    step(3, "analyze");
    let t = Instant::now();
    let an = analyze::Request { extended_run: Some(outcome.extended_run_id.clone()), ..req.analyze.clone() };
    let analysis = analyze::run(store, &an)
        .map_err(|e| fail("analyze", e, "`hptune analyze`, then `hptune train` and `hptune backtest`"))?;
    done.push(StageResult {
        stage: "analyze",
        id: analysis.selection.selection_id.clone(),
        result: format!(
            "trial {} ({}): cv {:.2}% +- {:.2}",
            analysis.best.trial_number,
            analysis.best.model_type,
            100.0 * analysis.best.cv_mean,
            100.0 * analysis.best.cv_std
        ),
        output: format!("{}/best_config.json, analysis_plots/", an.out_dir.display()),
        seconds: t.elapsed().as_secs_f64(),
    });

    step(4, "train");
    let t = Instant::now();
    let mut config = ModelConfig::from_json(&analysis.selection.best_config_json).map_err(|e| anyhow::anyhow!(e))?;
    config.epochs = req.final_epochs;
    let dataset = req.tune.dataset.clone();
    let trained = train::run(
        store,
        &train::Request {
            config,
            config_source: format!("selection {}", analysis.selection.selection_id),
            dataset,
            seed: req.tune.seed,
            holdout: req.tune.holdout,
            device: req.tune.device.clone(),
            out_dir: req.final_out.clone(),
        },
    )
    .map_err(|e| fail("train", e, "`hptune train` (it trains the selection), then `hptune backtest`"))?;
    let run = store.run(&trained.run_id)?;
    done.push(StageResult {
        stage: "train",
        id: trained.run_id.clone(),
        result: format!(
            "{} epochs, validation accuracy {:.2}%",
            trained.epochs_run,
            100.0 * run.best_val_accuracy.unwrap_or(f64::NAN)
        ),
        output: format!("{}/", trained.out_dir.display()),
        seconds: t.elapsed().as_secs_f64(),
    });

    step(5, "backtest");
    let t = Instant::now();
    let bt = backtest::Request { model_path: Some(trained.out_dir.clone()), dataset: None, ..req.backtest.clone() };
    let tested = backtest::run(store, &bt).map_err(|e| fail("backtest", e, "`hptune backtest`"))?;
    let stats = store.backtest_stats(&tested.backtest_id)?;
    let record = store.backtest(&tested.backtest_id)?;
    let stat = |strategy: &str, name: &str| {
        stats
            .iter()
            .find(|s| s.scope == "portfolio" && s.strategy == strategy && s.name == name)
            .and_then(|s| s.value)
            .unwrap_or(f64::NAN)
    };
    done.push(StageResult {
        stage: "backtest",
        id: tested.backtest_id.clone(),
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
        seconds: t.elapsed().as_secs_f64(),
    });
    Ok(done)
}
