//! Training runs, per-epoch metrics and checkpoint references.

use std::collections::HashMap;

use chrono::NaiveDate;
use duckdb::{params, Connection, OptionalExt};

use super::{Result, Store, StoreError};
use crate::data::{Bar, Panel};
use crate::model::EpochMetrics;
use crate::states::{Role, RunStage, RunStatus};

/// A run as it starts: everything needed to repeat it.
/// Where a training run's configuration comes from: recorded in columns of its own
/// (`study_name`/`trial_number`, `extended_run_id`/`config_rank`/`fold`, `selection_id`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Lineage {
    /// A configuration file or the default configuration (`config_source` says which).
    #[default]
    Given,
    /// A tuning trial.
    Trial { study: String, number: usize },
    /// A fold of an extended run's configuration.
    Fold { extended_run_id: String, config_rank: usize, fold: usize },
    /// A final training of an analysis selection.
    Selection(String),
}

impl Lineage {
    /// The lineage columns: study, trial, extended run, rank, fold, selection.
    #[allow(clippy::type_complexity)]
    fn columns(&self) -> (Option<&str>, Option<i32>, Option<&str>, Option<i32>, Option<i32>, Option<&str>) {
        match self {
            Lineage::Given => (None, None, None, None, None, None),
            Lineage::Trial { study, number } => (Some(study), Some(*number as i32), None, None, None, None),
            Lineage::Fold { extended_run_id, config_rank, fold } => {
                (None, None, Some(extended_run_id), Some(*config_rank as i32), Some(*fold as i32), None)
            }
            Lineage::Selection(id) => (None, None, None, None, None, Some(id)),
        }
    }

    /// Reads the six lineage columns from `row`, starting at column `first`.
    fn from_row(row: &duckdb::Row, first: usize) -> duckdb::Result<Self> {
        let text = |i: usize| row.get::<_, Option<String>>(first + i);
        let number = |i: usize| row.get::<_, Option<i32>>(first + i).map(|n| n.map(|n| n as usize));
        Ok(match (text(0)?, number(1)?, text(2)?, number(3)?, number(4)?, text(5)?) {
            (Some(study), Some(number), ..) => Lineage::Trial { study, number },
            (_, _, Some(extended_run_id), Some(config_rank), Some(fold), _) => {
                Lineage::Fold { extended_run_id, config_rank, fold }
            }
            (.., Some(selection)) => Lineage::Selection(selection),
            _ => Lineage::Given,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub stage: RunStage,
    pub dataset_id: String,
    pub model_type: String,
    pub config_json: String,
    pub config_source: String,
    pub seed: u64,
    pub device: String,
    pub tickers: Vec<String>,
    pub train_span: (NaiveDate, NaiveDate),
    pub val_span: (NaiveDate, NaiveDate),
    pub holdout_start: Option<NaiveDate>,
    /// Where the configuration comes from, in columns.
    pub lineage: Lineage,
}

/// A run as recorded.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run: NewRun,
    pub status: RunStatus,
    pub epochs_run: Option<i32>,
    pub best_epoch: Option<i32>,
    pub best_val_loss: Option<f64>,
    pub best_val_accuracy: Option<f64>,
    pub hptune_version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    pub checkpoint_id: String,
    pub run_id: String,
    pub role: Role,
    pub epoch: i32,
    pub path: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// The `hptune clean` that removed its weights (file and stored bytes); the row stays.
    pub cleanup_id: Option<String>,
}

/// A checkpoint file as written: its record, and its bytes, which the database keeps by sha256 so
/// that a lost or clobbered file can be written again.
#[derive(Debug, Clone)]
pub struct SavedCheckpoint {
    pub record: CheckpointRecord,
    pub bytes: Vec<u8>,
}

impl Store {
    /// The bars of a dataset, with its tickers in canonical order.
    pub fn load_panel(&self, name: &str) -> Result<(String, Panel)> {
        let info = self.dataset(name)?;
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT p.date, t.position, p.open, p.high, p.low, p.close, p.volume
             FROM prices p JOIN dataset_tickers t ON t.dataset_id = p.dataset_id AND t.ticker = p.ticker
             WHERE p.dataset_id = ? ORDER BY p.date, t.position",
        )?;
        let bars = stmt
            .query_map([&info.dataset_id], |r| {
                Ok(Bar {
                    date: r.get(0)?,
                    ticker: r.get::<_, i32>(1)? as u32,
                    open: r.get(2)?,
                    high: r.get(3)?,
                    low: r.get(4)?,
                    close: r.get(5)?,
                    volume: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let panel = Panel::new(info.tickers, bars).map_err(|e| StoreError::Corrupt(format!("dataset {name}: {e}")))?;
        Ok((info.dataset_id, panel))
    }

    pub fn begin_run(&self, r: &NewRun) -> Result<()> {
        insert_run(&*self.writer()?, r)
    }

    pub fn record_epoch(&self, run_id: &str, m: &EpochMetrics) -> Result<()> {
        self.record_epochs(run_id, std::slice::from_ref(m))
    }

    /// Records epochs of a run, in one transaction.
    pub fn record_epochs(&self, run_id: &str, epochs: &[EpochMetrics]) -> Result<()> {
        if epochs.is_empty() {
            return Ok(());
        }
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for m in epochs {
            insert_epoch(&tx, run_id, m)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a model trained elsewhere as a finished run with its checkpoint (and bytes), in one
    /// transaction.
    pub fn import_run(
        &self,
        run: &NewRun,
        (epochs_run, best_epoch): (usize, usize),
        checkpoint: &SavedCheckpoint,
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        insert_run(&tx, run)?;
        mark_finished(&tx, &run.run_id, epochs_run, best_epoch, std::slice::from_ref(checkpoint))?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a run finished and records its checkpoints (and their bytes) and its best epoch's
    /// per-date validation outcomes, in one transaction.
    pub fn finish_run(
        &self,
        run_id: &str,
        (epochs_run, best_epoch): (usize, usize),
        checkpoints: &[SavedCheckpoint],
        outcomes: &[crate::outcomes::DateOutcome],
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        mark_finished(&tx, run_id, epochs_run, best_epoch, checkpoints)?;
        super::outcomes::insert(&tx, run_id, outcomes)?;
        tx.commit()?;
        Ok(())
    }

    pub fn fail_run(&self, run_id: &str, reason: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE training_runs SET status = 'failed', reason = ?, finished_at = current_timestamp::TIMESTAMP,
                 epochs_run = (SELECT count(*) FROM epoch_metrics WHERE run_id = ?)
             WHERE run_id = ?",
            params![reason, run_id, run_id],
        )?;
        Ok(())
    }

    pub fn run(&self, run_id: &str) -> Result<RunRecord> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT run_id, stage, dataset_id, model_type, config_json, config_source, seed, device, tickers_json,
                    train_start, train_end, val_start, val_end, holdout_start, status, epochs_run,
                    best_epoch, best_val_loss, best_val_accuracy, hptune_version,
                    study_name, trial_number, extended_run_id, config_rank, fold, selection_id
             FROM training_runs WHERE run_id = ?",
            [run_id],
            |r| {
                let tickers: String = r.get(8)?;
                Ok(RunRecord {
                    run: NewRun {
                        run_id: r.get(0)?,
                        stage: r.get(1)?,
                        dataset_id: r.get(2)?,
                        model_type: r.get(3)?,
                        config_json: r.get(4)?,
                        config_source: r.get(5)?,
                        seed: r.get::<_, i64>(6)? as u64,
                        device: r.get(7)?,
                        tickers: serde_json::from_str(&tickers).unwrap_or_default(),
                        train_span: (r.get(9)?, r.get(10)?),
                        val_span: (r.get(11)?, r.get(12)?),
                        holdout_start: r.get(13)?,
                        lineage: Lineage::from_row(r, 20)?,
                    },
                    status: r.get(14)?,
                    epochs_run: r.get(15)?,
                    best_epoch: r.get(16)?,
                    best_val_loss: r.get(17)?,
                    best_val_accuracy: r.get(18)?,
                    hptune_version: r.get(19)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no training run {run_id} in {}", self.path.display())))
    }

    /// The newest finished run of a stage.
    pub fn latest_finished_run(&self, stage: &str) -> Result<Option<String>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT run_id FROM training_runs WHERE stage = ? AND status = 'finished' ORDER BY finished_at DESC LIMIT 1",
                [stage],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn epoch_metrics(&self, run_id: &str) -> Result<Vec<EpochMetrics>> {
        Ok(self.epoch_metrics_where("run_id = ?", run_id)?.into_iter().map(|(_, m)| m).collect())
    }

    /// The epochs of every trial of a study, by run id, in one read.
    pub fn study_epoch_metrics(&self, study_name: &str) -> Result<HashMap<String, Vec<EpochMetrics>>> {
        let mut runs: HashMap<String, Vec<EpochMetrics>> = HashMap::new();
        for (run, m) in self.epoch_metrics_where(STUDY_RUNS, study_name)? {
            runs.entry(run).or_default().push(m);
        }
        Ok(runs)
    }

    fn epoch_metrics_where(&self, condition: &str, value: &str) -> Result<Vec<(String, EpochMetrics)>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(&format!(
                "SELECT run_id, epoch, train_loss, val_loss, val_accuracy, seconds FROM epoch_metrics
                 WHERE {condition} ORDER BY run_id, epoch"
            ))?
            .query_map([value], |r| {
                Ok((
                    r.get(0)?,
                    EpochMetrics {
                        epoch: r.get::<_, i32>(1)? as usize,
                        train_loss: r.get(2)?,
                        val_loss: r.get(3)?,
                        val_accuracy: r.get(4)?,
                        seconds: r.get(5)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Renews the heartbeat of `worker`'s running training and extended runs.
    pub fn heartbeat_runs(&self, worker: &str) -> Result<()> {
        renew_runs(&*self.writer()?, worker)
    }

    /// Marks running training runs, their folds and running extended runs whose worker `is_gone`
    /// (given the worker and its heartbeat's age in seconds) as failed, reason `interrupted`;
    /// returns the ids marked.
    pub fn fail_orphaned_runs(&self, is_gone: impl Fn(&str, f64) -> bool) -> Result<Vec<String>> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let mut failed = Vec::new();
        for (table, key) in [("training_runs", "run_id"), ("extended_runs", "extended_run_id")] {
            let running: Vec<(String, String, f64)> = tx
                .prepare(&format!(
                    "SELECT {key}, worker, epoch(current_timestamp::TIMESTAMP - heartbeat_at)
                     FROM {table} WHERE status = 'running' AND worker IS NOT NULL"
                ))?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<duckdb::Result<_>>()?;
            for (id, worker, age) in running.into_iter().filter(|(_, w, age)| is_gone(w, *age)) {
                let reason =
                    format!("interrupted: its process (worker {worker}) is gone, last heartbeat {age:.0} s ago");
                tx.execute(
                    &format!(
                        "UPDATE {table} SET status = 'failed', reason = ?, finished_at = current_timestamp::TIMESTAMP
                         WHERE {key} = ? AND status = 'running'"
                    ),
                    params![reason, id],
                )?;
                if table == "training_runs" {
                    tx.execute(
                        "UPDATE cv_folds SET status = 'failed', reason = ? WHERE run_id = ? AND status = 'running'",
                        params![reason, id],
                    )?;
                }
                failed.push(id);
            }
        }
        tx.commit()?;
        Ok(failed)
    }

    /// Points the checkpoint records under folder `from` to the same files under `to` (absolute
    /// paths), after the folder was moved aside, so lineage survives.
    pub fn relocate_checkpoints(&self, from: &str, to: &str) -> Result<usize> {
        let conn = self.writer()?;
        let n = conn.execute(
            "UPDATE checkpoints SET path = ? || substr(path, length(?) + 1) WHERE starts_with(path, ? || '/')",
            params![to, from, from],
        )?;
        Ok(n)
    }

    pub fn checkpoints(&self, run_id: &str) -> Result<Vec<CheckpointRecord>> {
        self.checkpoints_where("run_id = ?", run_id)
    }

    /// The newest checkpoint of every trial of a study, by run id, in one read.
    pub fn study_checkpoints(&self, study_name: &str) -> Result<HashMap<String, CheckpointRecord>> {
        let mut runs = HashMap::new();
        for record in self.checkpoints_where(STUDY_RUNS, study_name)? {
            // Newest first: the first of a run is the one kept.
            runs.entry(record.run_id.clone()).or_insert(record);
        }
        Ok(runs)
    }

    /// The checkpoint recorded for a file path (absolute), if any.
    pub fn checkpoint_at(&self, path: &str) -> Result<Option<CheckpointRecord>> {
        Ok(self.checkpoints_where("path = ?", path)?.into_iter().next())
    }

    /// The newest checkpoint record of a file content.
    pub fn checkpoint_by_sha(&self, sha256: &str) -> Result<Option<CheckpointRecord>> {
        Ok(self.checkpoints_where("sha256 = ?", sha256)?.into_iter().next())
    }

    pub fn checkpoint(&self, checkpoint_id: &str) -> Result<CheckpointRecord> {
        self.checkpoints_where("checkpoint_id = ?", checkpoint_id)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("no checkpoint {checkpoint_id} in {}", self.path.display())))
    }

    /// Whether the database holds a checkpoint file's bytes (without reading them).
    pub fn has_checkpoint_file(&self, sha256: &str) -> Result<bool> {
        let conn = self.reader()?;
        Ok(conn
            .query_row("SELECT count(*) FROM checkpoint_files WHERE sha256 = ?", [sha256], |r| r.get::<_, i64>(0))?
            > 0)
    }

    /// The stored bytes of the given checkpoint files, each passed to `each` as it is read.
    pub fn each_checkpoint_file<E: From<StoreError>>(
        &self,
        shas: &[&str],
        mut each: impl FnMut(String, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let conn = self.reader()?;
        // A batch at a time: DuckDB holds a query's result whole, and a study's checkpoints can
        // be hundreds of megabytes.
        for batch in shas.chunks(64) {
            let marks = vec!["?"; batch.len()].join(", ");
            let mut stmt = conn
                .prepare(&format!("SELECT sha256, bytes FROM checkpoint_files WHERE sha256 IN ({marks})"))
                .map_err(StoreError::from)?;
            let mut rows = stmt.query(duckdb::params_from_iter(batch)).map_err(StoreError::from)?;
            while let Some(row) = rows.next().map_err(StoreError::from)? {
                each(row.get(0).map_err(StoreError::from)?, row.get(1).map_err(StoreError::from)?)?;
            }
        }
        Ok(())
    }

    fn checkpoints_where(&self, condition: &str, value: &str) -> Result<Vec<CheckpointRecord>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(&format!(
                "SELECT checkpoint_id, run_id, role, epoch, path, sha256, size_bytes, cleanup_id FROM checkpoints
                 WHERE {condition} ORDER BY created_at DESC, role"
            ))?
            .query_map([value], |r| {
                Ok(CheckpointRecord {
                    checkpoint_id: r.get(0)?,
                    run_id: r.get(1)?,
                    role: r.get(2)?,
                    epoch: r.get(3)?,
                    path: r.get(4)?,
                    sha256: r.get(5)?,
                    size_bytes: r.get(6)?,
                    cleanup_id: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// The condition on `run_id` that keeps the runs of one study's trials.
const STUDY_RUNS: &str = "run_id IN (SELECT run_id FROM trials WHERE study_name = ?)";

/// Records a run as started (status running).
pub(super) fn insert_run(conn: &Connection, r: &NewRun) -> Result<()> {
    let (study, trial, extended, rank, fold, selection) = r.lineage.columns();
    let provenance = super::provenance::record(conn)?;
    conn.prepare_cached(
            "INSERT INTO training_runs (run_id, stage, dataset_id, model_type, config_json, config_source, seed, device,
                 tickers_json, train_start, train_end, val_start, val_end, holdout_start, status, started_at, hptune_version,
                 study_name, trial_number, extended_run_id, config_rank, fold, selection_id, worker, heartbeat_at,
                 provenance_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', current_timestamp::TIMESTAMP, ?,
                     ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP, ?)",
        )?.execute(params![
                r.run_id,
                r.stage,
                r.dataset_id,
                r.model_type,
                r.config_json,
                r.config_source,
                r.seed as i64,
                r.device,
                serde_json::to_string(&r.tickers).unwrap(),
                r.train_span.0,
                r.train_span.1,
                r.val_span.0,
                r.val_span.1,
                r.holdout_start,
                crate::VERSION,
                study,
                trial,
                extended,
                rank,
                fold,
                selection,
                crate::workers::name(),
                provenance,
            ])?;
    Ok(())
}

/// Records one epoch of a run.
pub(super) fn insert_epoch(conn: &Connection, run_id: &str, m: &EpochMetrics) -> Result<()> {
    conn.prepare_cached("INSERT INTO epoch_metrics VALUES (?, ?, ?, ?, ?, ?)")?.execute(params![
        run_id,
        m.epoch as i32,
        m.train_loss,
        m.val_loss,
        m.val_accuracy,
        m.seconds
    ])?;
    Ok(())
}

/// Records a run's checkpoints (and their bytes, by content) and marks it finished, with its best
/// epoch's metrics, if it is still running.
pub(super) fn mark_finished(
    tx: &Connection,
    run_id: &str,
    epochs_run: usize,
    best_epoch: usize,
    checkpoints: &[SavedCheckpoint],
) -> Result<()> {
    for SavedCheckpoint { record: c, bytes } in checkpoints {
        tx.prepare_cached("INSERT INTO checkpoint_files VALUES (?, ?) ON CONFLICT DO NOTHING")?
            .execute(params![c.sha256, bytes])?;
        tx.prepare_cached("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP, NULL)")?
            .execute(params![c.checkpoint_id, c.run_id, c.role, c.epoch, c.path, c.sha256, c.size_bytes])?;
    }
    // Only a running run finishes: one another process marked failed keeps its state, and its late
    // end is kept as a note, as a trial's is.
    let finished = tx
        .prepare_cached(
            "UPDATE training_runs SET status = 'finished', epochs_run = ?, best_epoch = ?,
                 best_val_loss = m.val_loss, best_val_accuracy = m.val_accuracy,
                 finished_at = current_timestamp::TIMESTAMP
             FROM (SELECT val_loss, val_accuracy FROM epoch_metrics WHERE run_id = ? AND epoch = ?) m
             WHERE run_id = ? AND status = 'running'",
        )?
        .execute(params![epochs_run as i32, best_epoch as i32, run_id, best_epoch as i32, run_id])?;
    if finished == 0 {
        tx.prepare_cached(
            "UPDATE training_runs SET reason = coalesce(reason || '; ', '') || 'finished later (' || ? || ' epochs, best '
                 || ? || ') after it was marked ' || status
             WHERE run_id = ? AND status <> 'running'",
        )?
        .execute(params![epochs_run as i32, best_epoch as i32, run_id])?;
    }
    Ok(())
}

/// Renews the heartbeat of `worker`'s running training and extended runs.
pub(super) fn renew_runs(conn: &Connection, worker: &str) -> Result<()> {
    for table in ["training_runs", "extended_runs"] {
        conn.prepare_cached(&format!(
            "UPDATE {table} SET heartbeat_at = current_timestamp::TIMESTAMP WHERE worker = ? AND status = 'running'"
        ))?
        .execute([worker])?;
    }
    Ok(())
}
