//! Tags and notes on runs: what a person says of a study, run, selection or backtest.

use duckdb::params;

use super::{Result, Store, StoreError};

/// A note as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub number: usize,
    pub text: String,
    pub written_at: chrono::NaiveDateTime,
}

/// A study's own notes, and its trials' (trial number, notes).
pub type StudyNotes = (Vec<Note>, Vec<(usize, Vec<Note>)>);

impl Store {
    /// The `run_provenance` kind of `id` (any study, training run, extended run, selection or
    /// backtest), or an error naming it.
    pub fn run_kind(&self, id: &str) -> Result<String> {
        let conn = self.reader()?;
        conn.query_row("SELECT min(kind) FROM run_provenance WHERE id = ?", [id], |r| r.get::<_, Option<String>>(0))?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no study, training run, extended run, selection or backtest '{id}' in {}: \
                     `hptune query run_provenance` lists every id",
                    self.path.display()
                ))
            })
    }

    /// Sets tags on `id` (a key given again replaces its value) and removes `remove`, in one transaction.
    pub fn tag(&self, id: &str, set: &[(String, String)], remove: &[String]) -> Result<()> {
        let kind = self.run_kind(id)?;
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for (key, value) in set {
            tx.execute(
                "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?, current_timestamp::TIMESTAMP)",
                params![id, kind, key, value],
            )?;
        }
        for key in remove {
            tx.execute("DELETE FROM tags WHERE id = ? AND key = ?", params![id, key])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn tags(&self, id: &str) -> Result<Vec<(String, String)>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare("SELECT key, value FROM tags WHERE id = ? ORDER BY key")?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// Adds a note to `id`; returns its number.
    pub fn add_note(&self, id: &str, text: &str) -> Result<usize> {
        let kind = self.run_kind(id)?;
        let conn = self.writer()?;
        let number: i32 = conn.query_row(
            "INSERT INTO notes SELECT ?1, ?2, coalesce(max(number), 0) + 1, ?3, current_timestamp::TIMESTAMP
             FROM notes WHERE id = ?1 RETURNING number",
            params![id, kind, text],
            |r| r.get(0),
        )?;
        Ok(number as usize)
    }

    pub fn notes(&self, id: &str) -> Result<Vec<Note>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare("SELECT number, text, written_at FROM notes WHERE id = ? ORDER BY number")?
            .query_map([id], |r| {
                Ok(Note { number: r.get::<_, i32>(0)? as usize, text: r.get(1)?, written_at: r.get(2)? })
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// The notes of a study and of its trials' runs (by trial number), for the Optuna export.
    pub fn study_notes(&self, study: &str) -> Result<StudyNotes> {
        let own = self.notes(study)?;
        let conn = self.reader()?;
        let runs: Vec<(String, i32)> = conn
            .prepare(
                "SELECT DISTINCT n.id, r.trial_number FROM notes n JOIN training_runs r ON r.run_id = n.id
                 WHERE r.study_name = ? AND r.trial_number IS NOT NULL ORDER BY 2",
            )?
            .query_map([study], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<duckdb::Result<_>>()?;
        drop(conn);
        let mut trials = Vec::new();
        for (run, number) in runs {
            trials.push((number as usize, self.notes(&run)?));
        }
        Ok((own, trials))
    }
}
