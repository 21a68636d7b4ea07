//! Extended runs (top configurations x cross-validation folds) and the selections analysis makes.

use chrono::NaiveDate;
use duckdb::{params, OptionalExt};

use super::{Result, Store, StoreError};
use crate::cv::Scheme;
use crate::states::{FoldStatus, RunStatus};
use duckdb::arrow::array::RecordBatch;
use duckdb::arrow::datatypes::SchemaRef;

#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedRun {
    pub extended_run_id: String,
    pub study_name: String,
    pub dataset_id: String,
    pub scheme: Scheme,
    /// Folds, or groups with cpcv.
    pub n_folds: usize,
    /// Groups each cpcv split tests; 1 for the other schemes.
    pub test_groups: usize,
    pub embargo: usize,
    pub label_horizon: usize,
    pub top_n: usize,
    pub epochs: usize,
    pub seed: u64,
    pub holdout_start: Option<NaiveDate>,
    pub status: RunStatus,
}

impl ExtendedRun {
    /// The cross-validation it records.
    pub fn cv(&self) -> crate::cv::Cv {
        crate::cv::Cv {
            scheme: self.scheme,
            folds: self.n_folds,
            test_groups: self.test_groups,
            embargo: self.embargo,
            horizon: self.label_horizon,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedConfig {
    pub config_rank: usize,
    pub trial_number: usize,
    pub tuning_value: f64,
    pub model_type: String,
    pub config_json: String,
}

/// A (configuration, fold) row.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldRecord {
    pub config_rank: usize,
    pub fold: usize,
    pub train_span: (NaiveDate, NaiveDate),
    pub val_span: (NaiveDate, NaiveDate),
    pub n_train: usize,
    pub n_val: usize,
    pub n_purged: usize,
    pub n_embargoed: usize,
    /// cpcv: the 1-based groups the split validates; empty for the other schemes.
    pub test_groups: Vec<usize>,
    pub status: FoldStatus,
    pub run_id: Option<String>,
    pub checkpoint_id: Option<String>,
    pub epochs_run: Option<i32>,
    pub best_epoch: Option<i32>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

/// cpcv: path `path` takes group `test_group` (its first and last decision date) from split `fold`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRecord {
    pub path: usize,
    pub test_group: usize,
    pub fold: usize,
    pub group_span: (NaiveDate, NaiveDate),
}

/// The row `best_config` selects for an extended run.
#[derive(Debug, Clone, PartialEq)]
pub struct BestConfig {
    pub study_name: String,
    pub config_rank: usize,
    pub trial_number: usize,
    pub model_type: String,
    pub score: f64,
    pub cv_mean: f64,
    pub cv_std: f64,
    pub cv_worst: f64,
    pub tuning_value: f64,
    pub improvement: f64,
    pub folds: usize,
    /// cpcv: the configuration's out-of-sample paths, their mean, standard deviation and worst accuracy.
    pub paths: Option<PathStats>,
    pub why: String,
    pub config_json: String,
}

/// One configuration's result on one cpcv path (the `cpcv_path_results` view).
#[derive(Debug, Clone, PartialEq)]
pub struct PathResult {
    pub config_rank: usize,
    pub path: usize,
    pub dates: usize,
    pub accuracy: Option<f64>,
    pub log_loss: Option<f64>,
    pub sharpe: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathStats {
    pub paths: usize,
    pub mean: f64,
    pub std: f64,
    pub worst: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub selection_id: String,
    pub rule: String,
    pub study_name: String,
    pub extended_run_id: String,
    pub config_rank: usize,
    pub trial_number: usize,
    pub dataset_id: String,
    pub config_json: String,
    pub best_config_json: String,
}

impl Store {
    /// Records a new extended run with its configurations, planned folds and (cpcv) paths, in one
    /// transaction.
    pub fn create_extended_run(
        &self,
        run: &ExtendedRun,
        configs: &[ExtendedConfig],
        folds: &[FoldRecord],
        paths: &[PathRecord],
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO extended_runs (extended_run_id, study_name, dataset_id, scheme, n_folds, embargo_days,
                 label_horizon, top_n, epochs, seed, holdout_start, status, started_at, hptune_version, worker, heartbeat_at,
                 test_groups, provenance_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', current_timestamp::TIMESTAMP, ?, ?,
                     current_timestamp::TIMESTAMP, ?, ?)",
            params![
                run.extended_run_id,
                run.study_name,
                run.dataset_id,
                run.scheme,
                run.n_folds as i32,
                run.embargo as i32,
                run.label_horizon as i32,
                run.top_n as i32,
                run.epochs as i32,
                run.seed as i64,
                run.holdout_start,
                crate::VERSION,
                crate::workers::name(),
                (run.scheme == Scheme::Cpcv).then_some(run.test_groups as i32),
                super::provenance::record(&tx)?,
            ],
        )?;
        for c in configs {
            tx.execute(
                "INSERT INTO extended_configs VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    run.extended_run_id,
                    c.config_rank as i32,
                    c.trial_number as i32,
                    c.tuning_value,
                    c.model_type,
                    c.config_json
                ],
            )?;
        }
        for f in folds {
            tx.execute(
                "INSERT INTO cv_folds (extended_run_id, config_rank, fold, train_start, train_end, val_start, val_end,
                     n_train, n_val, n_purged, n_embargoed, status, test_groups)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?::INTEGER[])",
                params![
                    run.extended_run_id,
                    f.config_rank as i32,
                    f.fold as i32,
                    f.train_span.0,
                    f.train_span.1,
                    f.val_span.0,
                    f.val_span.1,
                    f.n_train as i32,
                    f.n_val as i32,
                    f.n_purged as i32,
                    f.n_embargoed as i32,
                    (!f.test_groups.is_empty()).then(|| format!("{:?}", f.test_groups)),
                ],
            )?;
        }
        for p in paths {
            tx.execute(
                "INSERT INTO cpcv_paths VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    run.extended_run_id,
                    p.path as i32,
                    p.test_group as i32,
                    p.fold as i32,
                    p.group_span.0,
                    p.group_span.1
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn extended_run(&self, id: &str) -> Result<ExtendedRun> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT extended_run_id, study_name, dataset_id, scheme, n_folds, embargo_days, label_horizon, top_n, epochs,
                    seed, holdout_start, status, coalesce(test_groups, 1) FROM extended_runs WHERE extended_run_id = ?",
            [id],
            |r| {
                Ok(ExtendedRun {
                    extended_run_id: r.get(0)?,
                    study_name: r.get(1)?,
                    dataset_id: r.get(2)?,
                    scheme: r.get(3)?,
                    n_folds: r.get::<_, i32>(4)? as usize,
                    embargo: r.get::<_, i32>(5)? as usize,
                    label_horizon: r.get::<_, i32>(6)? as usize,
                    top_n: r.get::<_, i32>(7)? as usize,
                    epochs: r.get::<_, i32>(8)? as usize,
                    seed: r.get::<_, i64>(9)? as u64,
                    holdout_start: r.get(10)?,
                    status: r.get(11)?,
                    test_groups: r.get::<_, i32>(12)? as usize,
                })
            },
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no extended run {id} in {}", self.path.display())))
    }

    /// The newest extended run (of a study, when given).
    pub fn latest_extended_run(&self, study: Option<&str>) -> Result<Option<String>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT extended_run_id FROM extended_runs WHERE ? IS NULL OR study_name = ?
                 ORDER BY started_at DESC, extended_run_id DESC LIMIT 1",
                params![study, study],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn extended_configs(&self, id: &str) -> Result<Vec<ExtendedConfig>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT config_rank, trial_number, tuning_value, model_type, config_json FROM extended_configs
                 WHERE extended_run_id = ? ORDER BY config_rank",
            )?
            .query_map([id], |r| {
                Ok(ExtendedConfig {
                    config_rank: r.get::<_, i32>(0)? as usize,
                    trial_number: r.get::<_, i32>(1)? as usize,
                    tuning_value: r.get(2)?,
                    model_type: r.get(3)?,
                    config_json: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn cv_folds(&self, id: &str) -> Result<Vec<FoldRecord>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT config_rank, fold, train_start, train_end, val_start, val_end, n_train, n_val, n_purged,
                        n_embargoed, status, run_id, checkpoint_id, epochs_run, best_epoch, val_loss, val_accuracy,
                        coalesce(array_to_string(test_groups, ','), '')
                 FROM cv_folds WHERE extended_run_id = ? ORDER BY config_rank, fold",
            )?
            .query_map([id], |r| {
                Ok(FoldRecord {
                    config_rank: r.get::<_, i32>(0)? as usize,
                    fold: r.get::<_, i32>(1)? as usize,
                    train_span: (r.get(2)?, r.get(3)?),
                    val_span: (r.get(4)?, r.get(5)?),
                    n_train: r.get::<_, i32>(6)? as usize,
                    n_val: r.get::<_, i32>(7)? as usize,
                    n_purged: r.get::<_, i32>(8)? as usize,
                    n_embargoed: r.get::<_, i32>(9)? as usize,
                    status: r.get(10)?,
                    run_id: r.get(11)?,
                    checkpoint_id: r.get(12)?,
                    epochs_run: r.get(13)?,
                    best_epoch: r.get(14)?,
                    val_loss: r.get(15)?,
                    val_accuracy: r.get(16)?,
                    test_groups: r
                        .get::<_, String>(17)?
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(|g| g.parse().unwrap_or(0))
                        .collect(),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn start_fold(&self, id: &str, rank: usize, fold: usize, run_id: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE cv_folds SET status = 'running', run_id = ?, reason = NULL
             WHERE extended_run_id = ? AND config_rank = ? AND fold = ?",
            params![run_id, id, rank as i32, fold as i32],
        )?;
        Ok(())
    }

    /// Marks a fold finished with the metrics of its training run's best epoch, if the fold is still
    /// running and its run finished (one another process marked failed stays failed).
    pub fn finish_fold(&self, id: &str, rank: usize, fold: usize, checkpoint_id: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE cv_folds SET status = 'finished', checkpoint_id = ?, epochs_run = r.epochs_run,
                 best_epoch = r.best_epoch, val_loss = r.best_val_loss, val_accuracy = r.best_val_accuracy
             FROM training_runs r
             WHERE r.run_id = cv_folds.run_id AND cv_folds.extended_run_id = ? AND cv_folds.config_rank = ?
               AND cv_folds.fold = ? AND cv_folds.status = 'running' AND r.status = 'finished'",
            params![checkpoint_id, id, rank as i32, fold as i32],
        )?;
        Ok(())
    }

    pub fn fail_fold(&self, id: &str, rank: usize, fold: usize, reason: &str) -> Result<()> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE cv_folds SET status = 'failed', reason = ? WHERE extended_run_id = ? AND config_rank = ? AND fold = ?",
            params![reason, id, rank as i32, fold as i32],
        )?;
        Ok(())
    }

    /// Ends an extended run: finished when every fold finished, failed otherwise.
    pub fn end_extended_run(&self, id: &str) -> Result<String> {
        let conn = self.writer()?;
        conn.execute(
            "UPDATE extended_runs SET finished_at = current_timestamp::TIMESTAMP,
                 status = CASE WHEN (SELECT bool_and(status = 'finished') FROM cv_folds WHERE extended_run_id = ?)
                               THEN 'finished' ELSE 'failed' END,
                 reason = (SELECT string_agg('config ' || config_rank || ' fold ' || fold || ': ' || coalesce(reason, status), '; ')
                           FROM cv_folds WHERE extended_run_id = ? AND status <> 'finished')
             WHERE extended_run_id = ? AND status = 'running'",
            params![id, id, id],
        )?;
        Ok(conn.query_row("SELECT status FROM extended_runs WHERE extended_run_id = ?", [id], |r| r.get(0))?)
    }

    /// Reopens an extended run to finish what it did not: running folds (their process is gone)
    /// and failed ones go back to pending.
    pub fn reopen_extended_run(&self, id: &str) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE training_runs SET status = 'failed', reason = 'interrupted: the extended run was resumed',
                 finished_at = current_timestamp::TIMESTAMP
             WHERE status = 'running' AND run_id IN (SELECT run_id FROM cv_folds WHERE extended_run_id = ?)",
            [id],
        )?;
        tx.execute("UPDATE cv_folds SET status = 'pending' WHERE extended_run_id = ? AND status <> 'finished'", [id])?;
        tx.execute(
            "UPDATE extended_runs SET status = 'running', reason = NULL, finished_at = NULL, worker = ?,
                 heartbeat_at = current_timestamp::TIMESTAMP WHERE extended_run_id = ?",
            params![crate::workers::name(), id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// How many training runs a fold has had: its first run `first_run_id` and the attempts after
    /// it (`first_run_id/attempt-N`).
    pub fn fold_attempts(&self, first_run_id: &str) -> Result<usize> {
        let conn = self.reader()?;
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM training_runs WHERE run_id = ?1 OR starts_with(run_id, ?1 || '/attempt-')",
            [first_run_id],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// An extended run's cpcv path results (none for the other schemes).
    pub fn path_results(&self, id: &str) -> Result<Vec<PathResult>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT config_rank, path, dates, accuracy, log_loss, sharpe FROM cpcv_path_results
                 WHERE extended_run_id = ? ORDER BY config_rank, path",
            )?
            .query_map([id], |r| {
                Ok(PathResult {
                    config_rank: r.get::<_, i32>(0)? as usize,
                    path: r.get::<_, i32>(1)? as usize,
                    dates: r.get::<_, i64>(2)? as usize,
                    accuracy: r.get(3)?,
                    log_loss: r.get(4)?,
                    sharpe: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The `cv_vs_tuning` rows of an extended run, for printing.
    pub fn cv_comparison<T>(
        &self,
        id: &str,
        f: impl FnOnce(SchemaRef, &mut dyn Iterator<Item = duckdb::Result<RecordBatch>>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.query_arrow(&self.cv_comparison_sql(id)?, f)
    }

    /// The query of an extended run's `cv_vs_tuning` rows as printed and in the report (cpcv adds
    /// its paths).
    pub(super) fn cv_comparison_sql(&self, id: &str) -> Result<String> {
        let paths = match self.extended_run(id)?.scheme {
            Scheme::Cpcv => ", paths, round(path_mean, 4) AS path_mean, round(path_std, 4) AS path_std",
            _ => "",
        };
        Ok(format!(
            "SELECT cv_rank, tuning_rank, trial_number AS trial, model_type, round(tuning_value, 4) AS tuning_value,
                    round(cv_mean, 4) AS cv_mean, round(cv_std, 4) AS cv_std, round(cv_worst, 4) AS cv_worst,
                    round(improvement, 4) AS improvement{paths}, round(score, 4) AS score,
                    folds_finished || '/' || folds AS folds
             FROM cv_vs_tuning WHERE extended_run_id = '{}' ORDER BY cv_rank",
            id.replace('\'', "''")
        ))
    }

    /// What the `best_config` view selects for an extended run.
    pub fn best_config(&self, id: &str) -> Result<Option<BestConfig>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT study_name, tuning_rank, trial_number, model_type, score, cv_mean, cv_std, cv_worst, tuning_value,
                        improvement, folds, why, config_json, paths, path_mean, path_std, path_worst
                 FROM best_config WHERE extended_run_id = ?",
                [id],
                |r| {
                    Ok(BestConfig {
                        study_name: r.get(0)?,
                        config_rank: r.get::<_, i32>(1)? as usize,
                        trial_number: r.get::<_, i32>(2)? as usize,
                        model_type: r.get(3)?,
                        score: r.get(4)?,
                        cv_mean: r.get(5)?,
                        cv_std: r.get(6)?,
                        cv_worst: r.get(7)?,
                        tuning_value: r.get(8)?,
                        improvement: r.get(9)?,
                        folds: r.get::<_, i64>(10)? as usize,
                        why: r.get(11)?,
                        config_json: r.get(12)?,
                        paths: match r.get::<_, Option<i64>>(13)? {
                            Some(paths) => Some(PathStats {
                                paths: paths as usize,
                                mean: r.get(14)?,
                                std: r.get(15)?,
                                worst: r.get(16)?,
                            }),
                            None => None,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// Records a selection and the verdict on its study, in one transaction.
    pub fn record_selection(&self, s: &Selection, validity: &super::ValidityRecord) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO selections VALUES (?, current_timestamp::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                s.selection_id,
                s.rule,
                s.study_name,
                s.extended_run_id,
                s.config_rank as i32,
                s.trial_number as i32,
                s.dataset_id,
                s.config_json,
                s.best_config_json,
                crate::VERSION,
                super::provenance::record(&tx)?,
            ],
        )?;
        super::outcomes::insert_validity(&tx, &s.selection_id, &s.study_name, validity)?;
        tx.commit()?;
        Ok(())
    }

    /// The newest selection (or the one named).
    pub fn selection(&self, id: Option<&str>) -> Result<Option<Selection>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT selection_id, rule, study_name, extended_run_id, config_rank, trial_number, dataset_id,
                        config_json, best_config_json
                 FROM selections WHERE ? IS NULL OR selection_id = ?
                 ORDER BY selected_at DESC, selection_id DESC LIMIT 1",
                params![id, id],
                |r| {
                    Ok(Selection {
                        selection_id: r.get(0)?,
                        rule: r.get(1)?,
                        study_name: r.get(2)?,
                        extended_run_id: r.get(3)?,
                        config_rank: r.get::<_, i32>(4)? as usize,
                        trial_number: r.get::<_, i32>(5)? as usize,
                        dataset_id: r.get(6)?,
                        config_json: r.get(7)?,
                        best_config_json: r.get(8)?,
                    })
                },
            )
            .optional()?)
    }
}
