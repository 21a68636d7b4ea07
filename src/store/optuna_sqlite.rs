//! A study as an Optuna SQLite storage (`../shared/ref/optuna-storage.md`, schema version 12),
//! so that `optuna.load_study(...)` and `optuna-dashboard` open it. Written into a new file that
//! replaces the old one only when complete.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDateTime;
use rusqlite::{params, Connection, Transaction};

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

/// A trial as Optuna stores it.
pub struct Trial {
    pub number: usize,
    /// COMPLETE, PRUNED, FAIL or RUNNING.
    pub state: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// User attributes: key and JSON value.
    pub user_attrs: Vec<(String, String)>,
    /// System attributes (hptune's keys start `hptune:`): key and JSON value.
    pub system_attrs: Vec<(String, String)>,
    /// Parameter name, value in Optuna's internal representation, distribution JSON.
    pub params: Vec<(String, f64, String)>,
    /// Step and value.
    pub intermediate: Vec<(usize, f64)>,
    pub value: Option<f64>,
}

fn when(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A study as Optuna stores it.
pub struct Study<'a> {
    pub name: &'a str,
    pub maximize: bool,
    /// Its settings as JSON, the user attribute `hptune`.
    pub settings_json: String,
    /// System attributes: key and JSON value.
    pub system_attrs: Vec<(String, String)>,
}

/// A note as optuna-dashboard keeps it, in the study's system attributes: its version under
/// `dashboard:note_ver` (a trial's: `dashboard:TRIAL_ID:note_ver`) and its Markdown body in chunks
/// of 2,045 characters under `dashboard:note_str:0`, `:1`, ... (optuna_dashboard/_note.py).
pub fn dashboard_note(trial_id: Option<i64>, body: &str) -> Vec<(String, String)> {
    const CHUNK: usize = 2045;
    let prefix = match trial_id {
        None => "dashboard:".to_string(),
        Some(id) => format!("dashboard:{id}:"),
    };
    let chars: Vec<char> = body.chars().collect();
    let mut attrs = vec![(format!("{prefix}note_ver"), "1".to_string())];
    for (i, chunk) in chars.chunks(CHUNK).enumerate() {
        let text: String = chunk.iter().collect();
        attrs.push((format!("{prefix}note_str:{i}"), serde_json::Value::String(text).to_string()));
    }
    attrs
}

/// Writes `path` with one study and its trials.
pub fn write(path: &Path, study: &Study, trials: &[Trial]) -> anyhow::Result<()> {
    let tmp = crate::files::partial_path(path);
    let _ = std::fs::remove_file(&tmp);
    {
        let mut conn = Connection::open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute("INSERT INTO version_info VALUES (1, 12, ?)", [format!("hptune {}", crate::VERSION)])?;
        tx.execute("INSERT INTO alembic_version VALUES ('v3.2.0.a')", [])?;
        tx.execute("INSERT INTO studies VALUES (1, ?)", [study.name])?;
        tx.execute(
            "INSERT INTO study_directions VALUES (1, ?, 1, 0)",
            [if study.maximize { "MAXIMIZE" } else { "MINIMIZE" }],
        )?;
        tx.execute("INSERT INTO study_user_attributes VALUES (1, 1, 'hptune', ?)", [&study.settings_json])?;
        for (key, value) in &study.system_attrs {
            tx.execute(
                "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES (1, ?, ?)",
                params![key, value],
            )?;
        }
        for (i, t) in trials.iter().enumerate() {
            insert_trial(&tx, i as i64 + 1, t)?;
        }
        tx.commit()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// One trial's rows; SQLite numbers its attribute, parameter, value and intermediate rows.
fn insert_trial(tx: &Transaction, trial_id: i64, t: &Trial) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO trials VALUES (?, ?, 1, ?, ?, ?)",
        params![trial_id, t.number as i64, t.state, when(&t.started_at), t.finished_at.as_ref().map(when)],
    )?;
    for (key, value) in &t.user_attrs {
        tx.execute(
            "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)",
            params![trial_id, key, value],
        )?;
    }
    for (key, value) in &t.system_attrs {
        tx.execute(
            "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES (?, ?, ?)",
            params![trial_id, key, value],
        )?;
    }
    for (name, value, distribution) in &t.params {
        tx.execute(
            "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?)",
            params![trial_id, name, value, distribution],
        )?;
    }
    for (step, value) in &t.intermediate {
        tx.execute(
            "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type)
             VALUES (?, ?, ?, 'FINITE')",
            params![trial_id, *step as i64, value],
        )?;
    }
    if let Some(v) = t.value {
        tx.execute(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, 0, ?, 'FINITE')",
            params![trial_id, v],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_into_dashboard_chunks_of_2045_characters() {
        let body: String = "é🙂x".repeat(2000);
        let attrs = dashboard_note(Some(3), &body);
        assert_eq!(attrs[0], ("dashboard:3:note_ver".to_string(), "1".to_string()));
        assert_eq!(attrs.len(), 1 + 3);
        let joined: String = attrs[1..]
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                assert_eq!(k, &format!("dashboard:3:note_str:{i}"));
                serde_json::from_str::<String>(v).unwrap()
            })
            .collect();
        assert_eq!(joined, body);
        assert_eq!(serde_json::from_str::<String>(&attrs[1].1).unwrap().chars().count(), 2045);
    }
}
