//! The named views in `sql/`, re-created on a read-write open when their checksum differs. The first line of each file is
//! a `-- description` that `hptune query --list` shows.

use duckdb::Connection;

pub struct View {
    pub name: &'static str,
    pub sql: &'static str,
}

impl View {
    /// The query that runs the view.
    pub fn select(&self) -> String {
        format!("SELECT * FROM {}", self.name)
    }

    pub fn description(&self) -> &'static str {
        self.sql.lines().next().unwrap_or("").trim_start_matches("--").trim()
    }
}

/// Every view, in the order they are created (a view may use the ones before it).
pub const VIEWS: &[View] = &[
    View { name: "datasets_overview", sql: include_str!("../../sql/datasets_overview.sql") },
    View { name: "ticker_coverage", sql: include_str!("../../sql/ticker_coverage.sql") },
    View { name: "training_runs_overview", sql: include_str!("../../sql/training_runs_overview.sql") },
    View { name: "tuning_leaderboard", sql: include_str!("../../sql/tuning_leaderboard.sql") },
    View { name: "optimization_history", sql: include_str!("../../sql/optimization_history.sql") },
    View { name: "run_outcomes", sql: include_str!("../../sql/run_outcomes.sql") },
    View { name: "trial_outcomes", sql: include_str!("../../sql/trial_outcomes.sql") },
    View { name: "trial_sharpe", sql: include_str!("../../sql/trial_sharpe.sql") },
    View { name: "baseline_comparison", sql: include_str!("../../sql/baseline_comparison.sql") },
    View { name: "study_validity", sql: include_str!("../../sql/study_validity.sql") },
    View { name: "cpcv_path_results", sql: include_str!("../../sql/cpcv_path_results.sql") },
    View { name: "cv_summary", sql: include_str!("../../sql/cv_summary.sql") },
    View { name: "cv_vs_tuning", sql: include_str!("../../sql/cv_vs_tuning.sql") },
    View { name: "best_config", sql: include_str!("../../sql/best_config.sql") },
    View { name: "current_selection", sql: include_str!("../../sql/current_selection.sql") },
    View { name: "pipeline_history", sql: include_str!("../../sql/pipeline_history.sql") },
    View { name: "run_provenance", sql: include_str!("../../sql/run_provenance.sql") },
    View { name: "run_annotations", sql: include_str!("../../sql/run_annotations.sql") },
    View { name: "run_facts", sql: include_str!("../../sql/run_facts.sql") },
    View { name: "pipeline_diff", sql: include_str!("../../sql/pipeline_diff.sql") },
    View { name: "schema_history", sql: include_str!("../../sql/schema_history.sql") },
];

/// Finds a view by name; `best-config` and `best_config` are the same name.
pub fn find(name: &str) -> Option<&'static View> {
    let name = name.replace('-', "_");
    VIEWS.iter().find(|v| v.name == name)
}

/// One checksum over every view's SQL: a file whose recorded checksum differs has views of
/// another hptune version.
pub fn checksum() -> String {
    super::migrate::checksum(&VIEWS.iter().map(|v| v.sql).collect::<Vec<_>>().join("\n"))
}

/// Creates or replaces every view when the file's recorded checksum is not this binary's, and
/// records the new one; does nothing otherwise (a read-write open is then one query dearer).
pub fn apply(conn: &Connection) -> duckdb::Result<()> {
    if current(conn) {
        return Ok(());
    }
    for v in VIEWS {
        conn.execute_batch(v.sql)?;
    }
    conn.execute_batch("CREATE TABLE IF NOT EXISTS hptune_views (checksum VARCHAR NOT NULL)")?;
    conn.execute("DELETE FROM hptune_views", [])?;
    conn.execute("INSERT INTO hptune_views VALUES (?)", [checksum()])?;
    Ok(())
}

/// Whether the file's views are this binary's (works read-only).
pub fn current(conn: &Connection) -> bool {
    let sum: duckdb::Result<Option<String>> =
        conn.query_row("SELECT max(checksum) FROM hptune_views", [], |r| r.get(0));
    matches!(sum, Ok(Some(s)) if s == checksum())
}
