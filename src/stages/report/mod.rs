//! `hptune report`: one HTML page of the whole record: the pipeline history across weeks, and the
//! newest (or a chosen study's) run of each stage with its charts, tables and ids.

mod html;

use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;

use self::html::Page;
use super::export::{curves_chart, equity_chart, fold_scores_chart, history_chart, slices_chart, tuning_vs_cv_chart};
use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLUE, GREEN, GREY, ORANGE};
use crate::search::Space;
use crate::states::TrialState;
use crate::store::{Lineage, Store};

/// What to report.
pub struct Request {
    pub out: PathBuf,
    /// The study whose runs the stage sections show (its newest extended run, that run's
    /// selection, its final model and that model's backtest); default: each stage's newest run.
    pub study: Option<String>,
    /// The history from this date on (default: all of it).
    pub since: Option<NaiveDate>,
}

/// The runs the stage sections show.
#[derive(Debug, Default)]
struct Runs {
    study: Option<String>,
    extended: Option<String>,
    selection: Option<String>,
    final_run: Option<String>,
    backtest: Option<String>,
}

/// Trials the leaderboard shows, and trades shown at each end of the backtest's list.
const LEADERBOARD: usize = 15;
const TRADES_EACH_END: usize = 10;

/// Writes the report; returns its path and size in bytes.
pub fn run(store: &Store, req: &Request) -> anyhow::Result<(PathBuf, usize)> {
    let runs = pick(store, req.study.as_deref())?;
    let mut page = Page::new();
    history(store, &mut page, req.since)?;
    changes(store, &mut page, &runs)?;
    study(store, &mut page, runs.study.as_deref())?;
    cross_validation(store, &mut page, runs.extended.as_deref(), runs.selection.as_deref())?;
    final_model(store, &mut page, runs.final_run.as_deref())?;
    backtest(store, &mut page, runs.backtest.as_deref())?;
    let mut subtitle = vec![
        format!("database {}", std::fs::canonicalize(store.path()).unwrap_or_else(|_| store.path().into()).display()),
        format!("written {} UTC by hptune {}", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"), crate::VERSION),
    ];
    if let Some(s) = &req.study {
        subtitle.push(format!("study {s} and the runs that followed it"));
    }
    let text = page.finish("hptune report", &subtitle);
    if let Some(dir) = req.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::files::write_atomic(&req.out, text.as_bytes())?;
    Ok((req.out.clone(), text.len()))
}

/// The runs to show: a study's chain, or each stage's newest.
fn pick(store: &Store, study: Option<&str>) -> anyhow::Result<Runs> {
    let Some(study) = study else {
        return Ok(Runs {
            study: store.latest_study()?,
            extended: store.latest_extended_run(None)?,
            selection: store.selection(None)?.map(|s| s.selection_id),
            final_run: store.latest_finished_run("train")?,
            backtest: store.latest_backtest()?,
        });
    };
    if store.study(study)?.is_none() {
        anyhow::bail!(
            "no study '{study}' in {}: `hptune query \"SELECT study_name FROM studies\"` lists them",
            store.path().display()
        );
    }
    let extended = store.latest_extended_run(Some(study))?;
    let selection = extended.as_deref().map(|e| store.selection_of(e)).transpose()?.flatten();
    let final_run = selection.as_deref().map(|s| store.final_run_of(s)).transpose()?.flatten();
    let backtest = final_run.as_deref().map(|r| store.backtest_of(r)).transpose()?.flatten();
    Ok(Runs { study: Some(study.into()), extended, selection, final_run, backtest })
}

fn history(store: &Store, page: &mut Page, since: Option<NaiveDate>) -> anyhow::Result<()> {
    page.section("history", "Pipeline history");
    let points = store.history_points(since)?;
    let scope = since.map_or("every selection".into(), |d| format!("selections since {d}"));
    if points.is_empty() {
        page.paragraph("empty", &format!("No {scope} yet: `hptune pipeline` (or `hptune analyze`) makes one."));
        return Ok(());
    }
    page.paragraph(
        "",
        &format!(
            "{} ({}): the `pipeline_history` view, one row per analysis with what followed it.",
            scope,
            points.len()
        ),
    );
    page.charts(&[selections_chart(&points)])?;
    page.table(&store.history_table(since)?, None);
    Ok(())
}

/// What changed since the previous pipeline, and where the runs shown came from.
fn changes(store: &Store, page: &mut Page, runs: &Runs) -> anyhow::Result<()> {
    page.section("changes", "What changed since the previous pipeline");
    match &runs.selection {
        None => page.paragraph("empty", "No pipeline yet."),
        Some(id) => match store.changes_table(id)? {
            (None, _) => page.paragraph("empty", &format!("Selection {id} is the first in this file.")),
            (Some(previous), table) => {
                page.paragraph(
                    "",
                    &format!(
                        "Selection {id} against {previous}, the one before it (`pipeline_diff`;                          `hptune diff {previous} {id} --all` shows every fact)."
                    ),
                );
                page.table(&table, None);
            }
        },
    }
    let ids: Vec<&str> = [&runs.study, &runs.extended, &runs.selection, &runs.final_run, &runs.backtest]
        .into_iter()
        .filter_map(|r| r.as_deref())
        .collect();
    if !ids.is_empty() {
        page.heading("Where these runs came from (`run_provenance`)");
        page.table(&store.provenance_table(&ids)?, None);
        let annotations = store.annotations_table(&ids)?;
        if !annotations.rows.is_empty() {
            page.heading("Tags and notes (`run_annotations`)");
            page.table(&annotations, None);
        }
    }
    Ok(())
}

/// Accuracies of each selection (tuning, cross-validation, final model) above, its backtest's
/// return against buy and hold below, over the selections' dates.
fn selections_chart(points: &[crate::store::HistoryPoint]) -> Chart {
    let dates: Vec<NaiveDate> = points.iter().map(|p| p.date).collect();
    let series = |f: &dyn Fn(&crate::store::HistoryPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points.iter().enumerate().filter_map(|(i, p)| f(p).map(|v| (i as f64, v))).collect()
    };
    let mark = if points.len() > 1 { Mark::Line } else { Mark::Dots };
    let accuracy = Panel {
        title: "Accuracy of each selection".into(),
        x_label: "selected on".into(),
        y_label: "direction accuracy (%)".into(),
        x_ticks: XTicks::Dates(dates.clone()),
        series: vec![
            Series::new("best tuning value", GREY, mark, series(&|p| p.best_tuning)),
            Series::new("cross-validated mean", BLUE, mark, series(&|p| p.cv_mean)),
            Series::new("final model (validation)", GREEN, mark, series(&|p| p.final_val)),
        ],
    };
    let returns = Panel {
        title: "Out-of-sample backtest of each selection's final model".into(),
        x_label: "selected on".into(),
        y_label: "return (%)".into(),
        x_ticks: XTicks::Dates(dates),
        series: vec![
            Series::new("buy and hold", GREY, mark, series(&|p| p.buy_and_hold_return)),
            Series::new("model", ORANGE, mark, series(&|p| p.backtest_return)),
        ],
    };
    Chart::new(vec![accuracy, returns], 2, (1200, 420))
}

fn study(store: &Store, page: &mut Page, name: Option<&str>) -> anyhow::Result<()> {
    page.section("study", "Tuning study");
    let Some(name) = name else {
        page.paragraph("empty", "No tuning study yet: `hptune tune` makes one.");
        return Ok(());
    };
    let study = store.study(name)?.with_context(|| format!("no study {name}"))?;
    let trials = store.trials(name)?;
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    page.ids(&[
        ("study", study.study_name.clone()),
        ("dataset", study.dataset_id.clone()),
        (
            "trials",
            format!(
                "{} of {} planned: {} complete, {} pruned, {} failed, {} running",
                trials.len(),
                study.n_trials,
                count(TrialState::Complete),
                count(TrialState::Pruned),
                count(TrialState::Fail),
                count(TrialState::Running)
            ),
        ),
        (
            "phases",
            format!("random {}, bayesian {}, finetune {}", study.plan.random, study.plan.bayesian, study.plan.finetune),
        ),
        ("seed, epochs, holdout", format!("{}, {}, {}", study.seed, study.epochs, study.holdout)),
    ]);
    let seeds = store.seeds(name)?;
    if !seeds.is_empty() {
        let from: Vec<String> = seeds.iter().map(|s| format!("{} #{}", s.source_study, s.source_number)).collect();
        page.paragraph(
            "",
            &format!(
                "Warm-started: {} finished trials of earlier studies seeded its sampler ({}; `study_seeds`). \
                 They are not trials of this study and count in no N below.",
                seeds.len(),
                from.join(", ")
            ),
        );
    }
    let space = Space::from_toml(&study.space_toml).map_err(|e| anyhow::anyhow!("study {name}: {e}"))?;
    page.charts(&[history_chart(name, &trials), slices_chart(&space, &trials)])?;
    page.heading("Is the best real? (`baseline_comparison`, `study_validity`)");
    let verdict = super::verdict::study(store, name, super::verdict::PBO_BLOCKS)?;
    for line in verdict.sentences() {
        page.paragraph("", &line);
    }
    let values: Vec<f64> = trials.iter().filter(|t| t.state == TrialState::Complete).filter_map(|t| t.value).collect();
    page.charts(&[verdict.chart(&values)])?;
    page.heading(&format!("Leaderboard (best {LEADERBOARD}; `tuning_leaderboard`)"));
    page.table(&store.leaderboard_table(name, LEADERBOARD)?, None);
    Ok(())
}

fn cross_validation(store: &Store, page: &mut Page, id: Option<&str>, selection: Option<&str>) -> anyhow::Result<()> {
    page.section("cv", "Cross-validation and selection");
    let Some(id) = id else {
        page.paragraph("empty", "No extended training run yet: `hptune extend` makes one.");
        return Ok(());
    };
    let run = store.extended_run(id)?;
    let selection = selection.map(|s| store.selection(Some(s))).transpose()?.flatten();
    let best = store.best_config(id)?;
    let selected = match (&selection, &best) {
        (Some(s), _) if s.extended_run_id == id => s.config_rank,
        (_, Some(b)) => b.config_rank,
        _ => 0,
    };
    let mut ids = vec![
        ("extended run", run.extended_run_id.clone()),
        ("study", run.study_name.clone()),
        ("status", run.status.to_string()),
        ("folds", format!("{} x {} (embargo {} days)", run.top_n, run.cv().describe(), run.embargo)),
    ];
    if let Some(s) = &selection {
        ids.push((
            "selection",
            format!("{} (trial {}, configuration {})", s.selection_id, s.trial_number, s.config_rank),
        ));
    }
    page.ids(&ids);
    if let Some(b) = &best {
        page.paragraph("why", &format!("Selected by the `best_config` view: {}", b.why));
    }
    let configs = store.extended_configs(id)?;
    let folds = store.cv_folds(id)?;
    page.charts(&[fold_scores_chart(&configs, &folds, selected), tuning_vs_cv_chart(&configs, &folds, selected)])?;
    page.heading("Tuning against cross-validation (`cv_vs_tuning`)");
    page.table(&store.cv_table(id)?, None);
    Ok(())
}

fn final_model(store: &Store, page: &mut Page, run_id: Option<&str>) -> anyhow::Result<()> {
    page.section("final", "Final model");
    let Some(run_id) = run_id else {
        page.paragraph("empty", "No final model yet: `hptune train` makes one.");
        return Ok(());
    };
    let rec = store.run(run_id)?;
    let r = &rec.run;
    let lineage = match &r.lineage {
        Lineage::Selection(id) => format!("selection {id}"),
        Lineage::Trial { study, number } => format!("study {study}, trial {number}"),
        Lineage::Fold { extended_run_id, config_rank, fold } => {
            format!("extended run {extended_run_id}, configuration {config_rank}, fold {fold}")
        }
        Lineage::Given => r.config_source.clone(),
    };
    page.ids(&[
        ("training run", r.run_id.clone()),
        ("trained from", lineage),
        ("dataset", r.dataset_id.clone()),
        ("configuration", r.config_json.clone()),
        ("tickers", r.tickers.join(", ")),
        (
            "training, validation",
            format!("{} .. {}, {} .. {}", r.train_span.0, r.train_span.1, r.val_span.0, r.val_span.1),
        ),
        (
            "best epoch",
            format!(
                "{} of {}: validation accuracy {}",
                rec.best_epoch.map_or("-".into(), |e| e.to_string()),
                rec.epochs_run.map_or("-".into(), |e| e.to_string()),
                rec.best_val_accuracy.map_or("-".into(), |a| format!("{:.2}%", 100.0 * a))
            ),
        ),
    ]);
    let epochs = store.epoch_metrics(run_id)?;
    page.charts(&[curves_chart(run_id, &epochs, rec.best_epoch)])?;
    Ok(())
}

fn backtest(store: &Store, page: &mut Page, id: Option<&str>) -> anyhow::Result<()> {
    page.section("backtest", "Backtest");
    let Some(id) = id else {
        page.paragraph("empty", "No backtest yet: `hptune backtest` makes one.");
        return Ok(());
    };
    let b = store.backtest(id)?;
    page.ids(&[
        ("backtest", b.backtest_id.clone()),
        ("model", format!("run {}, checkpoint {} ({})", b.run_id, b.checkpoint_id, b.model_source)),
        ("dataset", b.dataset_id.clone()),
        (
            "period",
            format!(
                "{} .. {}{}",
                b.start_date,
                b.end_date,
                if b.in_sample { " (in sample)" } else { " (out of sample)" }
            ),
        ),
        (
            "settings",
            format!(
                "{} at threshold {}, fill {}, commission {} bps, slippage {} bps, cash {}",
                b.mode, b.threshold, b.fill, b.commission_bps, b.slippage_bps, b.initial_cash
            ),
        ),
        (
            "direction accuracy",
            b.accuracy.map_or("-".into(), |a| format!("{:.2}% of {} predictions", 100.0 * a, b.n_predictions)),
        ),
    ]);
    page.charts(&[equity_chart(id, &store.backtest_equity(id)?)])?;
    page.heading("Statistics (backtesting.py's names)");
    page.table(&store.backtest_stats_table(id)?, None);
    page.heading("Per ticker");
    page.table(&store.ticker_results_table(id)?, None);
    let (trades, n) = store.trades_sample(id, TRADES_EACH_END)?;
    page.heading(&format!("Trades ({n} in all; `backtest_trades`)"));
    let gap = (n > 2 * TRADES_EACH_END).then(|| (TRADES_EACH_END, format!("... {} more ...", n - 2 * TRADES_EACH_END)));
    page.table(&trades, gap);
    Ok(())
}
