//! The named views in `sql/`, applied on every read-write open. The first line of each file is
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
    View { name: "cv_summary", sql: include_str!("../../sql/cv_summary.sql") },
    View { name: "cv_vs_tuning", sql: include_str!("../../sql/cv_vs_tuning.sql") },
    View { name: "best_config", sql: include_str!("../../sql/best_config.sql") },
    View { name: "current_selection", sql: include_str!("../../sql/current_selection.sql") },
    View { name: "pipeline_history", sql: include_str!("../../sql/pipeline_history.sql") },
    View { name: "schema_history", sql: include_str!("../../sql/schema_history.sql") },
];

/// Finds a view by name; `best-config` and `best_config` are the same name.
pub fn find(name: &str) -> Option<&'static View> {
    let name = name.replace('-', "_");
    VIEWS.iter().find(|v| v.name == name)
}

pub fn apply(conn: &Connection) -> duckdb::Result<()> {
    for v in VIEWS {
        conn.execute_batch(v.sql)?;
    }
    Ok(())
}
