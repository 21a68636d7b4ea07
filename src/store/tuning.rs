//! Tuning studies and trials. Trial numbers are claimed inside a write transaction, so workers in
//! any number of processes never take the same number, and each sees the others' running trials.

use chrono::NaiveDateTime;
use duckdb::{params, OptionalExt};
use serde_json::Value as Json;

use super::training::{insert_epoch, insert_run, mark_finished};
use super::{NewRun, Result, SavedCheckpoint, Store, StoreError};
use crate::model::EpochMetrics;
use crate::outcomes::DateOutcome;
use crate::search::{Params, Phase, PhasePlan, SampledBy, Sampler, Suggestion};
use crate::states::TrialState;

/// Snapshots a claim samples outside the write transaction before it samples inside it.
const CLAIM_TRIES: usize = 4;

/// The study's trial budget (its `n_trials`, which a resumed study may have raised) and its trials.
fn snapshot(conn: &duckdb::Connection, study: &str) -> Result<(usize, Vec<TrialRecord>)> {
    let n: i32 =
        conn.prepare_cached("SELECT n_trials FROM studies WHERE study_name = ?")?.query_row([study], |r| r.get(0))?;
    Ok((n as usize, read_trials(conn, study)?))
}

/// The number the next trial takes, or None when the budget is met (trials still running
/// count); too many failures are an error.
fn next_number(
    n_trials: usize,
    trials: &[TrialRecord],
    study: &StudyRecord,
    max_failures: usize,
) -> Result<Option<usize>> {
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    if count(TrialState::Complete) + count(TrialState::Pruned) + count(TrialState::Running) >= n_trials {
        return Ok(None);
    }
    if count(TrialState::Fail) > max_failures {
        return Err(StoreError::TooManyFailures {
            study: study.study_name.clone(),
            failed: count(TrialState::Fail),
            max: max_failures,
        });
    }
    Ok(Some(trials.last().map_or(0, |t| t.number + 1)))
}

#[derive(Debug, Clone, PartialEq)]
pub struct StudyRecord {
    pub study_name: String,
    pub direction: String,
    pub dataset_id: String,
    pub space_toml: String,
    pub n_trials: usize,
    pub plan: PhasePlan,
    pub seed: u64,
    pub epochs: usize,
    pub holdout: f64,
    pub pruning: bool,
    /// The sampler of the model-based phases.
    pub sampler: Sampler,
    pub sampler_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    pub number: usize,
    pub phase: Phase,
    pub sampled_by: SampledBy,
    pub state: TrialState,
    pub value: Option<f64>,
    pub val_loss: Option<f64>,
    pub run_id: Option<String>,
    pub worker: String,
    pub pruned_epoch: Option<i32>,
    pub reason: Option<String>,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub duration_s: Option<f64>,
    pub params: Params,
    /// Seconds since the trial's last heartbeat (as the database clock sees it).
    pub heartbeat_age_s: f64,
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialEnd {
    pub state: TrialState,
    pub value: Option<f64>,
    pub val_loss: Option<f64>,
    pub pruned_epoch: Option<i32>,
    pub reason: Option<String>,
}

fn read_trials(conn: &duckdb::Connection, study: &str) -> Result<Vec<TrialRecord>> {
    let mut trials: Vec<TrialRecord> = conn
        .prepare_cached(
            "SELECT number, phase, state, value, val_loss, run_id, worker, pruned_epoch, reason, started_at,
                    finished_at, duration_s, epoch(current_timestamp::TIMESTAMP - heartbeat_at), sampler
             FROM trials WHERE study_name = ? ORDER BY number",
        )?
        .query_map([study], |r| {
            Ok(TrialRecord {
                number: r.get::<_, i32>(0)? as usize,
                phase: r.get(1)?,
                sampled_by: r.get(13)?,
                state: r.get(2)?,
                value: r.get(3)?,
                val_loss: r.get(4)?,
                run_id: r.get(5)?,
                worker: r.get(6)?,
                pruned_epoch: r.get(7)?,
                reason: r.get(8)?,
                started_at: r.get(9)?,
                finished_at: r.get(10)?,
                duration_s: r.get(11)?,
                params: Params::new(),
                heartbeat_age_s: r.get(12)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT number, name, value_json FROM trial_params WHERE study_name = ? ORDER BY number")?;
    let rows = stmt
        .query_map([study], |r| Ok((r.get::<_, i32>(0)? as usize, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
    for row in rows {
        let (number, name, value) = row?;
        if let Some(t) = trials.iter_mut().find(|t| t.number == number) {
            t.params.insert(name, serde_json::from_str(&value).unwrap_or(Json::Null));
        }
    }
    Ok(trials)
}

impl Store {
    pub fn study(&self, name: &str) -> Result<Option<StudyRecord>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT study_name, direction, dataset_id, space_toml, n_trials, plan_random, plan_bayesian, plan_finetune,
                        seed, epochs, holdout, pruning, sampler, sampler_json FROM studies WHERE study_name = ?",
                [name],
                |r| {
                    Ok(StudyRecord {
                        study_name: r.get(0)?,
                        direction: r.get(1)?,
                        dataset_id: r.get(2)?,
                        space_toml: r.get(3)?,
                        n_trials: r.get::<_, i32>(4)? as usize,
                        plan: PhasePlan {
                            random: r.get::<_, i32>(5)? as usize,
                            bayesian: r.get::<_, i32>(6)? as usize,
                            finetune: r.get::<_, i32>(7)? as usize,
                        },
                        seed: r.get::<_, i64>(8)? as u64,
                        epochs: r.get::<_, i32>(9)? as usize,
                        holdout: r.get(10)?,
                        pruning: r.get(11)?,
                        sampler: r.get(12)?,
                        sampler_json: r.get(13)?,
                    })
                },
            )
            .optional()?)
    }

    /// The most recently created study, if any.
    pub fn latest_study(&self) -> Result<Option<String>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row("SELECT study_name FROM studies ORDER BY created_at DESC LIMIT 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Creates the study unless it exists; returns the stored record either way.
    pub fn create_study(&self, s: &StudyRecord) -> Result<StudyRecord> {
        {
            let conn = self.writer()?;
            let provenance = &crate::provenance::current().id;
            let created = conn.execute(
                "INSERT INTO studies (study_name, direction, dataset_id, space_toml, n_trials, plan_random, plan_bayesian,
                                      plan_finetune, seed, epochs, holdout, pruning, sampler_json, hptune_version,
                                      created_at, sampler, provenance_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP, ?, ?)
                 ON CONFLICT DO NOTHING",
                params![
                    s.study_name,
                    s.direction,
                    s.dataset_id,
                    s.space_toml,
                    s.n_trials as i32,
                    s.plan.random as i32,
                    s.plan.bayesian as i32,
                    s.plan.finetune as i32,
                    s.seed as i64,
                    s.epochs as i32,
                    s.holdout,
                    s.pruning,
                    s.sampler_json,
                    crate::VERSION,
                    s.sampler,
                    provenance,
                ],
            )?;
            // The process is recorded when it wrote the study, not when the study was there.
            if created > 0 {
                super::provenance::record(&conn)?;
            }
        }
        self.study(&s.study_name)?.ok_or_else(|| StoreError::NotFound(format!("study {}", s.study_name)))
    }

    /// Raises a study's trial budget (the phase split stays as created).
    pub fn set_study_trials(&self, study: &str, n_trials: usize) -> Result<()> {
        let conn = self.writer()?;
        conn.execute("UPDATE studies SET n_trials = ? WHERE study_name = ?", params![n_trials as i32, study])?;
        Ok(())
    }

    pub fn trials(&self, study: &str) -> Result<Vec<TrialRecord>> {
        let conn = self.reader()?;
        read_trials(&conn, study)
    }

    /// Marks RUNNING trials that `orphaned` says have no live worker as FAIL; returns their numbers.
    pub fn fail_orphans(&self, study: &str, orphaned: impl Fn(&TrialRecord) -> bool) -> Result<Vec<usize>> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let mut failed = Vec::new();
        for t in read_trials(&tx, study)?.iter().filter(|t| t.state == TrialState::Running && orphaned(t)) {
            let reason = format!(
                "orphaned: worker {} stopped while the trial was RUNNING (last heartbeat {:.0} s ago)",
                t.worker, t.heartbeat_age_s
            );
            tx.execute(
                "UPDATE trials SET state = 'FAIL', reason = ?, finished_at = current_timestamp::TIMESTAMP
                 WHERE study_name = ? AND number = ? AND state = 'RUNNING'",
                params![reason, study, t.number as i32],
            )?;
            if let Some(run) = &t.run_id {
                tx.execute(
                    "UPDATE training_runs SET status = 'failed', reason = ?, finished_at = current_timestamp::TIMESTAMP
                     WHERE run_id = ? AND status = 'running'",
                    params![reason, run],
                )?;
            }
            failed.push(t.number);
        }
        tx.commit()?;
        Ok(failed)
    }

    /// Claims the next trial number and records it RUNNING with the parameters `sample` picks
    /// from the study's history. None when the budget is met (counting trials still running).
    ///
    /// The sampler (for a GP, cubic in the trials) runs outside the write transaction, on a
    /// snapshot of the history, with the file let go meanwhile; the transaction then checks that no
    /// other worker claimed the number since, and takes it. After `CLAIM_TRIES` snapshots that
    /// other workers overtook, the sample is drawn inside the transaction, so a claim always
    /// ends. Numbers never repeat either way.
    pub fn claim_trial(
        &self,
        study: &StudyRecord,
        worker: &str,
        max_failures: usize,
        sample: impl Fn(usize, &[TrialRecord]) -> Suggestion,
    ) -> Result<Option<(usize, Suggestion)>> {
        for attempt in 1..=CLAIM_TRIES {
            let outside = if attempt < CLAIM_TRIES {
                // The connection (and with it, soon, the file) is let go while the sampler runs.
                let (n_trials, trials) = {
                    let conn = self.writer()?;
                    snapshot(&conn, &study.study_name)?
                };
                let Some(number) = next_number(n_trials, &trials, study, max_failures)? else { return Ok(None) };
                Some((number, sample(number, &trials)))
            } else {
                None
            };
            let mut conn = self.writer()?;
            let tx = conn.transaction()?;
            let (n_trials, trials) = snapshot(&tx, &study.study_name)?;
            let Some(number) = next_number(n_trials, &trials, study, max_failures)? else { return Ok(None) };
            let suggestion = match outside {
                Some((drawn_for, suggestion)) if drawn_for == number => suggestion,
                Some(_) => continue,
                None => sample(number, &trials),
            };
            tx.prepare_cached(
                "INSERT INTO trials (study_name, number, phase, sampler, state, worker, started_at, heartbeat_at)
                 VALUES (?, ?, ?, ?, 'RUNNING', ?, current_timestamp::TIMESTAMP, current_timestamp::TIMESTAMP)",
            )?
            .execute(params![
                study.study_name,
                number as i32,
                suggestion.phase,
                suggestion.sampled_by,
                worker
            ])?;
            {
                // The appender: no SQL to parse per parameter.
                let mut app = tx.appender("trial_params")?;
                for (name, value) in &suggestion.params {
                    app.append_row(params![study.study_name, number as i32, name, value.to_string(), value.as_f64()])?;
                }
                app.flush()?;
            }
            tx.commit()?;
            return Ok(Some((number, suggestion)));
        }
        unreachable!("the last try samples inside the transaction")
    }

    /// Records a trial's training run as started and links it to the trial, in one transaction.
    pub fn begin_trial_run(&self, study: &str, number: usize, run: &NewRun) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        insert_run(&tx, run)?;
        tx.prepare_cached("UPDATE trials SET run_id = ? WHERE study_name = ? AND number = ?")?.execute(params![
            run.run_id,
            study,
            number as i32
        ])?;
        tx.commit()?;
        Ok(())
    }

    /// Finishes a trial's training run (its epochs not yet recorded, its checkpoints) and the
    /// trial, in one transaction.
    pub fn finish_trial(
        &self,
        study: &str,
        number: usize,
        run: (&str, &[EpochMetrics], usize, usize, &[SavedCheckpoint]),
        outcomes: &[DateOutcome],
        end: &TrialEnd,
    ) -> Result<Finished> {
        let (run_id, pending, epochs_run, best_epoch, checkpoints) = run;
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for m in pending {
            insert_epoch(&tx, run_id, m)?;
        }
        mark_finished(&tx, run_id, epochs_run, best_epoch, checkpoints)?;
        super::outcomes::insert(&tx, run_id, outcomes)?;
        let finished = guarded_end(&tx, study, number, end)?;
        tx.commit()?;
        Ok(finished)
    }

    /// Renews the heartbeat of a worker's RUNNING trials.
    pub fn heartbeat(&self, study: &str, worker: &str) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE trials SET heartbeat_at = current_timestamp::TIMESTAMP
             WHERE study_name = ? AND worker = ? AND state = 'RUNNING'",
            params![study, worker],
        )?;
        super::training::renew_runs(&tx, worker)?;
        tx.commit()?;
        Ok(())
    }

    /// The validation accuracy at `epoch` of the study's COMPLETE trials (for the median pruner).
    pub fn completed_values_at(&self, study: &str, epoch: usize) -> Result<Vec<f64>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(
                "SELECT m.val_accuracy FROM trials t JOIN epoch_metrics m ON m.run_id = t.run_id
                 WHERE t.study_name = ? AND t.state = 'COMPLETE' AND m.epoch = ?",
            )?
            .query_map(params![study, epoch as i32], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Records how a trial ended, if it is still RUNNING (see `Finished`).
    pub fn end_trial(&self, study: &str, number: usize, end: &TrialEnd) -> Result<Finished> {
        guarded_end(&*self.writer()?, study, number, end)
    }

    /// How many trials of a study are done (COMPLETE or PRUNED), and the best COMPLETE value.
    pub fn trial_progress(&self, study: &str) -> Result<(usize, Option<f64>)> {
        let conn = self.reader()?;
        let progress = conn
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE state IN ('COMPLETE', 'PRUNED')), max(value) FILTER (WHERE state = 'COMPLETE')
                 FROM trials WHERE study_name = ?",
            )?
            .query_row([study], |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?)))?;
        Ok(progress)
    }
}

/// Whether a trial's end was recorded, or someone else had already finished it.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Recorded,
    /// The trial was no longer RUNNING (another process marked it, e.g. as orphaned): its state
    /// stays, and this result is kept in its `reason` as a note.
    AlreadyEnded {
        state: String,
    },
}

/// Only a RUNNING trial can be finished: the update is guarded, so two processes that race to
/// end one trial cannot overwrite each other.
fn guarded_end(conn: &duckdb::Connection, study: &str, number: usize, end: &TrialEnd) -> Result<Finished> {
    let n = conn
        .prepare_cached(
            "UPDATE trials SET state = ?, value = ?, val_loss = ?, pruned_epoch = ?, reason = ?,
                 finished_at = current_timestamp::TIMESTAMP,
                 duration_s = epoch(current_timestamp::TIMESTAMP - started_at)
             WHERE study_name = ? AND number = ? AND state = 'RUNNING'",
        )?
        .execute(params![end.state, end.value, end.val_loss, end.pruned_epoch, end.reason, study, number as i32])?;
    if n == 1 {
        return Ok(Finished::Recorded);
    }
    let state: String = conn.query_row(
        "SELECT state FROM trials WHERE study_name = ? AND number = ?",
        params![study, number as i32],
        |r| r.get(0),
    )?;
    let note = format!(
        "late result after the trial was marked {state}: {} value {}",
        end.state,
        end.value.map_or("-".to_string(), |v| v.to_string())
    );
    conn.execute(
        "UPDATE trials SET reason = coalesce(reason || '; ', '') || ? WHERE study_name = ? AND number = ?",
        params![note, study, number as i32],
    )?;
    Ok(Finished::AlreadyEnded { state })
}
