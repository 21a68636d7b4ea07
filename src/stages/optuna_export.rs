//! The study as an Optuna SQLite storage (`../shared/ref/optuna-storage.md`), so that
//! `optuna.load_study(...)` and `optuna-dashboard` open it. Written from database rows into a new
//! file that replaces the old one only when complete.

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection};

use crate::search::Space;
use crate::store::{StudyRecord, TrialRecord};

const SCHEMA: &str = r#"
CREATE TABLE studies (study_id INTEGER NOT NULL, study_name VARCHAR(512) NOT NULL, PRIMARY KEY (study_id));
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE TABLE version_info (version_info_id INTEGER NOT NULL, schema_version INTEGER, library_version VARCHAR(256),
    PRIMARY KEY (version_info_id), CHECK (version_info_id=1));
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
CREATE TABLE study_directions (study_direction_id INTEGER NOT NULL, direction VARCHAR(8) NOT NULL, study_id INTEGER NOT NULL,
    objective INTEGER NOT NULL, PRIMARY KEY (study_direction_id), UNIQUE (study_id, objective),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE study_user_attributes (study_user_attribute_id INTEGER NOT NULL, study_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (study_user_attribute_id), UNIQUE (study_id, "key"),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE study_system_attributes (study_system_attribute_id INTEGER NOT NULL, study_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (study_system_attribute_id), UNIQUE (study_id, "key"),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE trials (trial_id INTEGER NOT NULL, number INTEGER, study_id INTEGER, state VARCHAR(8) NOT NULL,
    datetime_start DATETIME, datetime_complete DATETIME, PRIMARY KEY (trial_id),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE INDEX ix_trials_study_id ON trials (study_id);
CREATE TABLE trial_user_attributes (trial_user_attribute_id INTEGER NOT NULL, trial_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (trial_user_attribute_id), UNIQUE (trial_id, "key"),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_system_attributes (trial_system_attribute_id INTEGER NOT NULL, trial_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (trial_system_attribute_id), UNIQUE (trial_id, "key"),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_params (param_id INTEGER NOT NULL, trial_id INTEGER, param_name VARCHAR(512), param_value FLOAT,
    distribution_json TEXT, PRIMARY KEY (param_id), UNIQUE (trial_id, param_name),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_values (trial_value_id INTEGER NOT NULL, trial_id INTEGER NOT NULL, objective INTEGER NOT NULL,
    value FLOAT, value_type VARCHAR(7) NOT NULL, PRIMARY KEY (trial_value_id), UNIQUE (trial_id, objective),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_intermediate_values (trial_intermediate_value_id INTEGER NOT NULL, trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL, intermediate_value FLOAT, intermediate_value_type VARCHAR(7) NOT NULL,
    PRIMARY KEY (trial_intermediate_value_id), UNIQUE (trial_id, step), FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_heartbeats (trial_heartbeat_id INTEGER NOT NULL, trial_id INTEGER NOT NULL, heartbeat DATETIME NOT NULL,
    PRIMARY KEY (trial_heartbeat_id), UNIQUE (trial_id), FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
"#;

fn when(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Writes `path` from a study, its trials and each trial's per-epoch validation accuracy.
pub fn write(
    path: &Path,
    study: &StudyRecord,
    space: &Space,
    trials: &[TrialRecord],
    intermediate: &dyn Fn(&TrialRecord) -> Vec<(usize, f64)>,
) -> anyhow::Result<()> {
    let tmp = crate::files::partial_path(path);
    let _ = std::fs::remove_file(&tmp);
    {
        let mut conn = Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute("INSERT INTO version_info VALUES (1, 12, ?)", [format!("hptune {}", crate::VERSION)])?;
        tx.execute("INSERT INTO alembic_version VALUES ('v3.2.0.a')", [])?;
        tx.execute("INSERT INTO studies VALUES (1, ?)", [&study.study_name])?;
        let direction = if study.direction == "maximize" { "MAXIMIZE" } else { "MINIMIZE" };
        tx.execute("INSERT INTO study_directions VALUES (1, ?, 1, 0)", [direction])?;
        tx.execute(
            "INSERT INTO study_user_attributes VALUES (1, 1, 'hptune', ?)",
            [serde_json::json!({"seed": study.seed, "epochs": study.epochs, "n_trials": study.n_trials}).to_string()],
        )?;
        let (mut param_id, mut value_id, mut inter_id) = (0, 0, 0);
        for (i, t) in trials.iter().enumerate() {
            let trial_id = i as i64 + 1;
            let complete = t.finished_at.as_ref().map(when);
            tx.execute(
                "INSERT INTO trials VALUES (?, ?, 1, ?, ?, ?)",
                params![trial_id, t.number as i64, t.state, when(&t.started_at), complete],
            )?;
            tx.execute(
                "INSERT INTO trial_user_attributes VALUES (?, ?, 'phase', ?)",
                params![trial_id, trial_id, serde_json::to_string(&t.phase)?],
            )?;
            for p in &space.params {
                let Some(v) = t.params.get(&p.name) else { continue };
                let Some(internal) = p.dist.to_internal(v) else { continue };
                let stored = if p.dist.is_categorical() { internal } else { v.as_f64().unwrap_or(internal) };
                param_id += 1;
                tx.execute(
                    "INSERT INTO trial_params VALUES (?, ?, ?, ?, ?)",
                    params![param_id, trial_id, p.name, stored, p.dist.optuna_json().to_string()],
                )?;
            }
            let steps = intermediate(t);
            for (step, value) in &steps {
                inter_id += 1;
                tx.execute(
                    "INSERT INTO trial_intermediate_values VALUES (?, ?, ?, ?, 'FINITE')",
                    params![inter_id, trial_id, *step as i64, value],
                )?;
            }
            // A COMPLETE trial has its value; a PRUNED one its last intermediate value.
            let value = match t.state.as_str() {
                "COMPLETE" => t.value,
                "PRUNED" => steps.last().map(|s| s.1),
                _ => None,
            };
            if let Some(v) = value {
                value_id += 1;
                tx.execute("INSERT INTO trial_values VALUES (?, ?, 0, ?, 'FINITE')", params![value_id, trial_id, v])?;
            }
        }
        tx.commit()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
