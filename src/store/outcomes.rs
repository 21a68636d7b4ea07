//! Per-date out-of-sample outcomes (of trials, folds, final models and baselines) and a study's
//! baselines: rows in, series out.

use chrono::NaiveDate;
use duckdb::params;

use super::{Result, Store};
use crate::outcomes::{DateOutcome, Summary};

/// A study's baseline, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRecord {
    pub name: String,
    pub description: String,
    pub source: String,
    pub val_span: (NaiveDate, NaiveDate),
    pub summary: Summary,
}

/// The outcomes of one source (a trial's run, a baseline), by date.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeSeries {
    pub source: String,
    /// The trial number, for a trial's series.
    pub trial: Option<usize>,
    pub outcomes: Vec<DateOutcome>,
}

/// A study's verdict as recorded with a selection (NaN and None are stored as NULL).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidityRecord {
    pub trials_tried: usize,
    pub mean_correlation: f64,
    pub effective_trials: f64,
    pub best_trial: Option<usize>,
    pub best_accuracy: Option<f64>,
    pub validation_dates: Option<usize>,
    pub expected_best: Option<f64>,
    pub best_q95: Option<f64>,
    pub p_chance: Option<f64>,
    pub best_baseline: Option<String>,
    pub baseline_accuracy: Option<f64>,
    pub pbo: Option<f64>,
    pub pbo_blocks: Option<usize>,
    pub pbo_slope: Option<f64>,
    pub sharpe_annual: Option<f64>,
    pub psr: Option<f64>,
    pub dsr: Option<f64>,
    pub sr0: Option<f64>,
    pub summary: String,
}

pub(super) fn insert_validity(
    tx: &duckdb::Transaction,
    selection_id: &str,
    study: &str,
    v: &ValidityRecord,
) -> Result<()> {
    let f = |x: Option<f64>| x.filter(|x| x.is_finite());
    let f0 = |x: f64| Some(x).filter(|x| x.is_finite());
    tx.execute(
        "INSERT INTO selection_validity VALUES
         (?, ?, current_timestamp::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            selection_id,
            study,
            v.trials_tried as i32,
            f0(v.mean_correlation),
            f0(v.effective_trials),
            v.best_trial.map(|n| n as i32),
            f(v.best_accuracy),
            v.validation_dates.map(|n| n as i32),
            f(v.expected_best),
            f(v.best_q95),
            f(v.p_chance),
            v.best_baseline,
            f(v.baseline_accuracy),
            f(v.pbo),
            v.pbo_blocks.map(|n| n as i32),
            f(v.pbo_slope),
            f(v.sharpe_annual),
            f(v.psr),
            f(v.dsr),
            f(v.sr0),
            v.summary,
        ],
    )?;
    Ok(())
}

/// Appends `outcomes` of `source` (inside the caller's transaction).
pub(super) fn insert(tx: &duckdb::Transaction, source: &str, outcomes: &[DateOutcome]) -> Result<()> {
    crate::costs::time(crate::costs::Cost::Outcomes, || {
        let mut app = tx.appender("outcomes")?;
        for o in outcomes {
            app.append_row(params![source, o.date, o.hit as f32, o.log_loss as f32, o.ret as f32])?;
        }
        app.flush()?;
        Ok(())
    })
}

impl Store {
    /// Records a study's baselines and their outcomes in one transaction, unless the study has
    /// them already (they are scored once, when the study is created).
    pub fn record_baselines(
        &self,
        study: &str,
        baselines: &[BaselineRecord],
        outcomes: &[Vec<DateOutcome>],
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let have: i64 = tx.query_row("SELECT count(*) FROM baselines WHERE study_name = ?", [study], |r| r.get(0))?;
        if have > 0 {
            return Ok(());
        }
        for (b, o) in baselines.iter().zip(outcomes) {
            let s = &b.summary;
            tx.execute(
                "INSERT INTO baselines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    study,
                    b.name,
                    b.description,
                    b.source,
                    b.val_span.0,
                    b.val_span.1,
                    s.dates as i32,
                    s.accuracy,
                    s.log_loss,
                    s.mean_return,
                    s.sharpe_annual.is_finite().then_some(s.sharpe_annual),
                ],
            )?;
            insert(&tx, &b.source, o)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The effective number of trials that a training run's selection was chosen among (recorded
    /// by `analyze`), if the run trained a recorded selection.
    pub fn effective_trials_of_run(&self, run_id: &str) -> Result<Option<f64>> {
        let conn = self.reader()?;
        let n: Option<f64> = conn.query_row(
            "SELECT max(v.effective_trials) FROM training_runs r JOIN selection_validity v USING (selection_id)
                 WHERE r.run_id = ?",
            [run_id],
            |r| r.get(0),
        )?;
        Ok(n)
    }

    /// A study's baselines, best accuracy first.
    pub fn baselines(&self, study: &str) -> Result<Vec<BaselineRecord>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT name, description, source, val_start, val_end, dates, accuracy, log_loss, mean_return, sharpe
             FROM baselines WHERE study_name = ? ORDER BY accuracy DESC, name",
        )?;
        let rows = stmt.query_map([study], |r| {
            Ok(BaselineRecord {
                name: r.get(0)?,
                description: r.get(1)?,
                source: r.get(2)?,
                val_span: (r.get(3)?, r.get(4)?),
                summary: Summary {
                    dates: r.get::<_, i32>(5)? as usize,
                    accuracy: r.get(6)?,
                    log_loss: r.get(7)?,
                    mean_return: r.get(8)?,
                    sharpe_annual: r.get::<_, Option<f64>>(9)?.unwrap_or(f64::NAN),
                },
            })
        })?;
        Ok(rows.collect::<duckdb::Result<_>>()?)
    }

    /// The outcome series of a study's trials that have them (complete trials), by trial number,
    /// and of its baselines (`trial` None), each by date.
    pub fn study_outcomes(&self, study: &str) -> Result<Vec<OutcomeSeries>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "WITH sources AS (
                 SELECT run_id AS source, number FROM trials WHERE study_name = ? AND state = 'COMPLETE' AND run_id IS NOT NULL
                 UNION ALL
                 SELECT source, NULL FROM baselines WHERE study_name = ?)
             SELECT s.source, s.number, o.date, o.hit, o.log_loss, o.ret
             FROM sources s JOIN outcomes o USING (source)
             ORDER BY s.number NULLS LAST, s.source, o.date",
        )?;
        let mut rows = stmt.query(params![study, study])?;
        let mut out: Vec<OutcomeSeries> = Vec::new();
        while let Some(r) = rows.next()? {
            let source: String = r.get(0)?;
            let outcome = DateOutcome {
                date: r.get(2)?,
                hit: r.get::<_, f32>(3)? as f64,
                log_loss: r.get::<_, f32>(4)? as f64,
                ret: r.get::<_, f32>(5)? as f64,
            };
            match out.last_mut() {
                Some(s) if s.source == source => s.outcomes.push(outcome),
                _ => out.push(OutcomeSeries {
                    source,
                    trial: r.get::<_, Option<i32>>(1)?.map(|n| n as usize),
                    outcomes: vec![outcome],
                }),
            }
        }
        Ok(out)
    }
}
