//! A study server's study copied into this file (`hptune pull`): the study, and each finished
//! trial with its training run, epochs and checkpoints, each trial in one transaction, so that a
//! pull stopped halfway keeps what it copied and the next one adds the rest.

use duckdb::{params, OptionalExt};

use super::server::TrialDetails;
use super::training::{insert_epoch, insert_run, mark_finished};
use super::{Result, Store, StoreError, StudyRecord, TrialRecord};
use crate::states::TrialState;

impl Store {
    /// The study server a study was pulled from (None for a study run in this file).
    pub fn pulled_from(&self, study: &str) -> Result<Option<String>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row("SELECT storage FROM pulled_studies WHERE study_name = ?", [study], |r| r.get(0))
            .optional()?)
    }

    /// Records a study pulled from `storage`: creates it here unless it exists (an existing study
    /// must be the same one, pulled from the same server), raises its budget to the server's.
    pub fn import_study(&self, s: &StudyRecord, storage: &str) -> Result<StudyRecord> {
        if let Some(here) = self.study(&s.study_name)? {
            let pulled = self.pulled_from(&s.study_name)?;
            if pulled.is_none() || here.dataset_id != s.dataset_id || here.space_toml != s.space_toml {
                return Err(StoreError::NotFound(format!(
                    "{} already holds a study {} that was not pulled from this server ({}); \
                     pull it into another --db, or rename one of them",
                    self.path().display(),
                    s.study_name,
                    pulled.as_deref().map_or("it was run here".into(), |p| format!("it came from {p}"))
                )));
            }
        }
        let created = self.create_study(s)?;
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO pulled_studies VALUES (?, ?, current_timestamp::TIMESTAMP, current_timestamp::TIMESTAMP)
             ON CONFLICT (study_name) DO UPDATE SET last_pulled_at = excluded.last_pulled_at, storage = excluded.storage",
            params![s.study_name, storage],
        )?;
        if s.n_trials > created.n_trials {
            conn.execute(
                "UPDATE studies SET n_trials = ? WHERE study_name = ?",
                params![s.n_trials as i32, s.study_name],
            )?;
        }
        drop(conn);
        self.study(&s.study_name)?.ok_or_else(|| StoreError::NotFound(format!("study {}", s.study_name)))
    }

    /// Adds a finished trial of a pulled study with its run, epochs and checkpoints, in one
    /// transaction. A trial already here is left as it is (false).
    pub fn import_trial(&self, study: &str, t: &TrialRecord, details: &TrialDetails) -> Result<bool> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let exists: bool = tx.query_row(
            "SELECT count(*) > 0 FROM trials WHERE study_name = ? AND number = ?",
            params![study, t.number as i32],
            |r| r.get(0),
        )?;
        if exists {
            return Ok(false);
        }
        let run_id = details.run.as_ref().map(|r| r.run_id.clone());
        tx.execute(
            "INSERT INTO trials (study_name, number, phase, state, value, val_loss, run_id, worker, pruned_epoch, reason,
                                 started_at, finished_at, duration_s, heartbeat_at, sampler)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, ?), ?)",
            params![
                study,
                t.number as i32,
                t.phase,
                t.state,
                t.value,
                t.val_loss,
                run_id,
                t.worker,
                t.pruned_epoch,
                t.reason,
                t.started_at,
                t.finished_at,
                t.duration_s,
                t.finished_at,
                t.started_at,
                t.sampled_by,
            ],
        )?;
        for (name, value) in &t.params {
            tx.execute(
                "INSERT INTO trial_params VALUES (?, ?, ?, ?, ?)",
                params![study, t.number as i32, name, value.to_string(), value.as_f64()],
            )?;
        }
        if let Some(run) = &details.run {
            insert_run(&tx, run)?;
            for m in &details.epochs {
                insert_epoch(&tx, &run.run_id, m)?;
            }
            if t.state == TrialState::Fail || details.epochs.is_empty() {
                tx.execute(
                    "UPDATE training_runs SET status = 'failed', reason = ?, finished_at = ?, epochs_run = ? WHERE run_id = ?",
                    params![t.reason, t.finished_at, details.epochs.len() as i32, run.run_id],
                )?;
            } else {
                // The epoch with the lowest validation loss (the first of equals), as training picks it.
                let best = details.epochs.iter().reduce(|b, e| if e.val_loss < b.val_loss { e } else { b });
                let best_epoch = best.map_or(0, |m| m.epoch);
                mark_finished(&tx, &run.run_id, details.epochs.len(), best_epoch, &details.checkpoints)?;
            }
            tx.execute(
                "UPDATE training_runs SET started_at = ?, worker = ? WHERE run_id = ?",
                params![t.started_at, t.worker, run.run_id],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }
}
