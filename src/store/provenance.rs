//! The provenance rows: this process's, written once per file the first time it records a run.

use duckdb::{params, Connection};

use super::Result;

/// Records this process's provenance in the file unless it is there; returns its id.
pub(super) fn record(conn: &Connection) -> Result<&'static str> {
    let p = crate::provenance::current();
    conn.prepare_cached(
        "INSERT OR IGNORE INTO provenance VALUES (?, current_timestamp::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        p.id,
        p.version,
        p.commit,
        p.command_line,
        p.host,
        p.cpu_model,
        p.kernel_path,
        p.threads as i32,
        p.device
    ])?;
    Ok(&p.id)
}

/// The kinds `hptune diff` compares, as `run_facts` names them, with their words.
pub const DIFF_KINDS: [(&str, &str); 5] = [
    ("selection", "selection (pipeline)"),
    ("study", "study"),
    ("extended_run", "extended run"),
    ("final_model", "final model"),
    ("backtest", "backtest"),
];

/// One fact of two runs: its section (settings, config, data, code, results), key and values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FactPair {
    pub section: String,
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

impl super::Store {
    /// The kind `run_facts` gives `id` (one of `DIFF_KINDS`), or an error naming it.
    pub fn diff_kind(&self, id: &str) -> Result<&'static str> {
        let kind = self.run_kind(id)?;
        DIFF_KINDS.iter().find(|(k, _)| *k == kind).map(|(k, _)| *k).ok_or_else(|| {
            super::StoreError::NotFound(format!(
                "'{id}' is a {kind}: diff compares studies, extended runs, selections, final models and backtests"
            ))
        })
    }

    /// The two newest selections (pipelines), older first.
    pub fn last_selections(&self, n: usize) -> Result<Vec<String>> {
        let conn = self.reader()?;
        let mut ids: Vec<String> = conn
            .prepare("SELECT selection_id FROM selections ORDER BY selected_at DESC, selection_id DESC LIMIT ?")?
            .query_map([n as i64], |r| r.get(0))?
            .collect::<duckdb::Result<_>>()?;
        ids.reverse();
        Ok(ids)
    }

    /// The facts of two runs of `kind` side by side, settings first and results last; only those
    /// whose values differ unless `all`.
    pub fn diff(&self, kind: &str, a: &str, b: &str, all: bool) -> Result<Vec<FactPair>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "WITH a AS (SELECT section, key, value FROM run_facts WHERE kind = ?1 AND id = ?2),
                      b AS (SELECT section, key, value FROM run_facts WHERE kind = ?1 AND id = ?3)
                 SELECT * FROM (
                     SELECT coalesce(a.section, b.section) AS s, coalesce(a.key, b.key) AS k, a.value, b.value
                     FROM a FULL JOIN b ON a.section = b.section AND a.key = b.key
                     WHERE ?4 OR a.value IS DISTINCT FROM b.value)
                 ORDER BY list_position(['settings', 'config', 'data', 'code', 'results', 'tags', 'notes'], s), k",
            )?
            .query_map(duckdb::params![kind, a, b, all], |r| {
                Ok(FactPair { section: r.get(0)?, key: r.get(1)?, a: r.get(2)?, b: r.get(3)? })
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }
}
