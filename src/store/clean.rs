//! What `hptune clean` may remove (weights only: the record's rows stay), recording a cleanup, and
//! compacting the file afterwards.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use duckdb::params;

use super::{CheckpointRecord, Result, Store};

/// Why a checkpoint's weights may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CleanReason {
    /// Its run failed, or its trial was pruned or failed.
    Failed,
    /// Its study (or the study its extended run cross-validated) is older than the age limit.
    Old,
    /// Its trial is outside the top N of its study, or its configuration outside the top N of its
    /// finished extended run (by cv rank).
    OutsideTop,
}

/// A checkpoint whose weights may go, and what it belongs to: its study, extended run or run.
#[derive(Debug, Clone)]
pub struct Cleanable {
    pub record: CheckpointRecord,
    pub owner: String,
    pub reason: CleanReason,
}

/// What a cleanup did, as recorded in `cleanups`.
#[derive(Debug, Clone, Default)]
pub struct Cleanup {
    pub cleanup_id: String,
    pub keep_top: usize,
    pub older_than_days: Option<u32>,
    pub n_folders: usize,
    pub disk_bytes: u64,
}

/// The runs whose weights stay whatever the settings: what a final model, an import, a backtest, a
/// signal or a selection (its trial and its configuration's folds) uses, and every running run.
const PROTECTED: &str = "
WITH protected AS (
    SELECT run_id FROM training_runs WHERE stage IN ('train', 'import') AND status = 'finished'
    UNION SELECT run_id FROM training_runs WHERE status = 'running'
    UNION SELECT run_id FROM backtests
    UNION SELECT run_id FROM signals
    UNION SELECT r.run_id FROM selections s JOIN training_runs r
          ON r.extended_run_id = s.extended_run_id AND r.config_rank = s.config_rank
    UNION SELECT r.run_id FROM selections s JOIN training_runs r
          ON r.study_name = s.study_name AND r.trial_number = s.trial_number
)";

/// The other checkpoints that may be cleaned, with the first reason that applies: failed, old,
/// outside the top. An extended run still running is ranked and aged only when it has ended.
const CLEANABLE: &str = ", trial_rank AS (
    SELECT study_name, number, row_number() OVER (PARTITION BY study_name ORDER BY value DESC, number) AS rank
    FROM trials WHERE state = 'COMPLETE' AND value IS NOT NULL
), runs AS (
    SELECT r.run_id, r.stage, r.status,
           coalesce(r.study_name, e.study_name) AS study_name,
           CASE WHEN r.study_name IS NOT NULL THEN 'study ' || r.study_name
                WHEN r.extended_run_id IS NOT NULL THEN 'extended run ' || r.extended_run_id
                ELSE 'run ' || r.run_id END AS owner,
           t.state AS trial_state, tr.rank AS trial_rank, e.status AS extended_status, v.cv_rank
    FROM training_runs r
    LEFT JOIN trials t ON t.study_name = r.study_name AND t.number = r.trial_number
    LEFT JOIN trial_rank tr ON tr.study_name = r.study_name AND tr.number = r.trial_number
    LEFT JOIN extended_runs e ON e.extended_run_id = r.extended_run_id
    LEFT JOIN cv_vs_tuning v ON v.extended_run_id = r.extended_run_id AND v.tuning_rank = r.config_rank
    WHERE r.run_id NOT IN (SELECT run_id FROM protected)
), reasons AS (
    SELECT runs.run_id, runs.owner,
           CASE WHEN runs.status = 'failed' OR runs.trial_state IN ('PRUNED', 'FAIL') THEN 'failed'
                WHEN runs.stage = 'extend' AND runs.extended_status = 'running' THEN NULL
                WHEN s.created_at < ?::TIMESTAMP THEN 'old'
                WHEN runs.stage = 'tune' AND coalesce(runs.trial_rank > ?, true) THEN 'top'
                WHEN runs.stage = 'extend' AND runs.cv_rank > ? THEN 'top'
           END AS reason
    FROM runs LEFT JOIN studies s ON s.study_name = runs.study_name
)
SELECT c.checkpoint_id, reasons.owner, reasons.reason
FROM checkpoints c JOIN reasons USING (run_id)
WHERE c.cleanup_id IS NULL AND reasons.reason IS NOT NULL
ORDER BY c.checkpoint_id";

impl Store {
    /// The checkpoints whose weights `hptune clean` may remove, keeping the `keep_top` best trials
    /// of each study and configurations of each finished extended run; with `older_than_days`,
    /// every unprotected checkpoint of a study created longer ago than that goes too.
    pub fn cleanable(&self, keep_top: usize, older_than_days: Option<u32>) -> Result<Vec<Cleanable>> {
        let rows: Vec<(String, String, String)> = {
            let conn = self.reader()?;
            let cutoff = older_than_days.map(|d| {
                (chrono::Utc::now().naive_utc() - chrono::Duration::days(i64::from(d)))
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string()
            });
            let top = keep_top as i64;
            let mut stmt = conn.prepare(&format!("{PROTECTED}{CLEANABLE}"))?;
            let rows = stmt.query_map(params![cutoff, top, top], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<duckdb::Result<_>>()?
        };
        rows.into_iter()
            .map(|(id, owner, reason)| {
                let reason = match reason.as_str() {
                    "failed" => CleanReason::Failed,
                    "old" => CleanReason::Old,
                    _ => CleanReason::OutsideTop,
                };
                Ok(Cleanable { record: self.checkpoint(&id)?, owner, reason })
            })
            .collect()
    }

    /// The stored checkpoint bytes that would go if the checkpoints `cleaning` went: per sha256
    /// no checkpoint that stays uses, its size (stored bytes no checkpoint uses at all, under "").
    pub fn stored_bytes_freed(&self, cleaning: &[&CheckpointRecord]) -> Result<HashMap<String, u64>> {
        let conn = self.reader()?;
        let going: HashSet<&str> = cleaning.iter().map(|c| c.checkpoint_id.as_str()).collect();
        let kept: HashSet<String> = conn
            .prepare("SELECT checkpoint_id, sha256 FROM checkpoints WHERE cleanup_id IS NULL")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .filter_map(|row| match row {
                Ok((id, _)) if going.contains(id.as_str()) => None,
                other => Some(other.map(|(_, sha)| sha)),
            })
            .collect::<duckdb::Result<_>>()?;
        let stored: Vec<(String, i64)> = conn
            .prepare("SELECT sha256, octet_length(bytes) FROM checkpoint_files")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<duckdb::Result<_>>()?;
        Ok(stored.into_iter().filter(|(sha, _)| !kept.contains(sha)).map(|(sha, n)| (sha, n as u64)).collect())
    }

    /// Every recorded checkpoint path.
    /// Records that a stage moved `original` aside to `path` (both absolute).
    pub fn record_moved_aside(&self, original: &str, path: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT OR REPLACE INTO moved_aside VALUES (?, ?, current_timestamp::TIMESTAMP)",
            duckdb::params![path, original],
        )?;
        Ok(())
    }

    /// The outputs this database's stages moved aside, as recorded (they may be gone since).
    pub fn moved_aside_paths(&self) -> Result<Vec<String>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare("SELECT path FROM moved_aside ORDER BY path")?
            .query_map([], |r| r.get(0))?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    pub fn checkpoint_paths(&self) -> Result<Vec<String>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare("SELECT DISTINCT path FROM checkpoints")?
            .query_map([], |r| r.get(0))?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// The recorded paths of the checkpoints whose weights stay whatever the settings (`PROTECTED`).
    pub fn protected_paths(&self) -> Result<Vec<String>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(&format!(
                "{PROTECTED} SELECT path FROM checkpoints WHERE run_id IN (SELECT run_id FROM protected) ORDER BY path"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// Records a cleanup: marks `cleaning`'s checkpoints cleaned by it and deletes the stored bytes
    /// no checkpoint that stays uses, in one transaction. Returns the stored bytes deleted.
    pub fn record_cleanup(&self, cleanup: &Cleanup, cleaning: &[&CheckpointRecord]) -> Result<u64> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for c in cleaning {
            tx.execute(
                "UPDATE checkpoints SET cleanup_id = ? WHERE checkpoint_id = ? AND cleanup_id IS NULL",
                params![cleanup.cleanup_id, c.checkpoint_id],
            )?;
        }
        let freed: i64 = tx.query_row(
            "SELECT coalesce(sum(octet_length(bytes)), 0) FROM checkpoint_files
             WHERE sha256 NOT IN (SELECT sha256 FROM checkpoints WHERE cleanup_id IS NULL)",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM checkpoint_files WHERE sha256 NOT IN (SELECT sha256 FROM checkpoints WHERE cleanup_id IS NULL)",
            [],
        )?;
        tx.execute(
            "INSERT INTO cleanups VALUES (?, current_timestamp::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?)",
            params![
                cleanup.cleanup_id,
                cleanup.keep_top as i64,
                cleanup.older_than_days,
                cleaning.len() as i64,
                cleanup.n_folders as i64,
                cleanup.disk_bytes as i64,
                freed,
                crate::VERSION
            ],
        )?;
        tx.commit()?;
        Ok(freed as u64)
    }

    /// The workers of running trials and runs, with the age of their heartbeat in seconds.
    pub fn running_workers(&self) -> Result<Vec<(String, f64)>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) FROM trials
                 WHERE state = 'RUNNING' AND worker IS NOT NULL
                 UNION ALL
                 SELECT worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) FROM training_runs
                 WHERE status = 'running' AND worker IS NOT NULL
                 UNION ALL
                 SELECT worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at) FROM extended_runs
                 WHERE status = 'running' AND worker IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, Option<f64>>(1)?.unwrap_or(f64::INFINITY))))?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// The file's free space (blocks deleted rows left, which compaction gives back) and its size,
    /// in bytes.
    pub fn space(&self) -> Result<(u64, u64)> {
        let conn = self.reader()?;
        let (block, free, total): (i64, i64, i64) =
            conn.query_row("SELECT block_size, free_blocks, total_blocks FROM pragma_database_size()", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        Ok(((block * free) as u64, (block * total) as u64))
    }

    /// Rewrites the file without the space deleted rows left behind (DuckDB reuses freed blocks
    /// but never shrinks a file): every table, view and constraint is copied into a new file
    /// beside it, which then takes its name, all while this process holds the file, so that no
    /// other process writes in between. Returns the new file's size.
    pub fn compact(&self) -> Result<u64> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let conn = self.writer()?;
        conn.execute_batch("CHECKPOINT")?;
        let partial = crate::files::partial_path(&self.path);
        let _ = std::fs::remove_file(&partial);
        let name: String = conn.query_row("SELECT current_database()", [], |r| r.get(0))?;
        let copied = conn.execute_batch(&format!(
            "ATTACH '{}' AS hptune_compacted; COPY FROM DATABASE \"{name}\" TO hptune_compacted; DETACH hptune_compacted",
            partial.to_string_lossy().replace('\'', "''")
        ));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        let moved = std::fs::rename(&partial, &self.path);
        // The connection still reads the old file: close it, so the next use opens the new one.
        conn.discard();
        moved.map_err(|source| super::StoreError::Compact { path: self.path.clone(), source })?;
        Ok(size(&self.path))
    }
}
