//! Schema migrations: `migrations/NNNN_name.sql`, applied in order, each in its own transaction,
//! recorded with a checksum. A landed migration is never edited; a database written by a newer
//! hptune is refused rather than guessed at.

use std::path::Path;

use duckdb::Connection;

use super::StoreError;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A test checks this list against the files in `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "datasets", sql: include_str!("../../migrations/0001_datasets.sql") },
    Migration { version: 2, name: "training", sql: include_str!("../../migrations/0002_training.sql") },
    Migration { version: 3, name: "tuning", sql: include_str!("../../migrations/0003_tuning.sql") },
    Migration { version: 4, name: "extended", sql: include_str!("../../migrations/0004_extended.sql") },
    Migration { version: 5, name: "checkpoint_files", sql: include_str!("../../migrations/0005_checkpoint_files.sql") },
    Migration { version: 6, name: "backtest", sql: include_str!("../../migrations/0006_backtest.sql") },
    Migration {
        version: 7,
        name: "states_and_lineage",
        sql: include_str!("../../migrations/0007_states_and_lineage.sql"),
    },
    Migration { version: 8, name: "imported_models", sql: include_str!("../../migrations/0008_imported_models.sql") },
    Migration { version: 9, name: "cleanups", sql: include_str!("../../migrations/0009_cleanups.sql") },
    Migration { version: 10, name: "samplers", sql: include_str!("../../migrations/0010_samplers.sql") },
    Migration { version: 11, name: "pulled_studies", sql: include_str!("../../migrations/0011_pulled_studies.sql") },
    Migration { version: 12, name: "outcomes", sql: include_str!("../../migrations/0012_outcomes.sql") },
    Migration { version: 13, name: "moved_aside", sql: include_str!("../../migrations/0013_moved_aside.sql") },
    Migration { version: 14, name: "linear_models", sql: include_str!("../../migrations/0014_linear_models.sql") },
    Migration { version: 15, name: "cpcv", sql: include_str!("../../migrations/0015_cpcv.sql") },
    Migration { version: 16, name: "provenance", sql: include_str!("../../migrations/0016_provenance.sql") },
    Migration { version: 17, name: "tags_notes", sql: include_str!("../../migrations/0017_tags_notes.sql") },
    Migration { version: 18, name: "warm_start", sql: include_str!("../../migrations/0018_warm_start.sql") },
    Migration {
        version: 19,
        name: "checkpoint_bytes_uncompressed",
        sql: include_str!("../../migrations/0019_checkpoint_bytes_uncompressed.sql"),
    },
];

impl Migration {
    /// What the ledger records of this migration's text.
    pub fn checksum(&self) -> String {
        checksum(self.sql)
    }
}

pub fn checksum(sql: &str) -> String {
    crate::ids::sha256_hex(sql.as_bytes())
}

pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS hptune_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL, hptune_version VARCHAR NOT NULL)";

/// The highest applied version, or None when the file has no ledger yet. Works read-only.
pub fn applied_version(conn: &Connection) -> Result<Option<i32>, StoreError> {
    let has_ledger: bool = conn.query_row(
        "SELECT count(*) > 0 FROM information_schema.tables WHERE table_name = 'hptune_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !has_ledger {
        return Ok(None);
    }
    Ok(conn.query_row("SELECT max(version) FROM hptune_migrations", [], |r| r.get(0))?)
}

/// Refuses a file whose schema is newer than this binary's.
pub fn check_not_newer(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    match applied_version(conn)? {
        Some(found) if found > latest() => {
            Err(StoreError::NewerSchema { path: path.to_path_buf(), found, known: latest() })
        }
        _ => Ok(()),
    }
}

/// Refuses a file whose schema is newer than this binary's, or whose applied migrations differ
/// from this binary's text. Works read-only; returns the applied versions.
pub fn verify(conn: &Connection, path: &Path) -> Result<Vec<i32>, StoreError> {
    if applied_version(conn)?.is_none() {
        return Ok(Vec::new());
    }
    check_not_newer(conn, path)?;
    let applied: Vec<(i32, String, String)> = conn
        .prepare("SELECT version, name, checksum FROM hptune_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (version, name, recorded) in &applied {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == *version) else { continue };
        let current = checksum(m.sql);
        if &current != recorded {
            return Err(StoreError::MigrationChanged {
                path: path.to_path_buf(),
                migration: format!("{:04}_{}.sql", version, name),
                recorded: recorded.clone(),
                current,
            });
        }
    }
    Ok(applied.into_iter().map(|a| a.0).collect())
}

/// Applies pending migrations; returns true when the first one was applied now (a new database).
pub fn run(conn: &mut Connection, path: &Path) -> Result<bool, StoreError> {
    conn.execute_batch(LEDGER)?;
    let applied = verify(conn, path)?;
    let mut created = false;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql).map_err(|e| StoreError::MigrationFailed {
            migration: format!("{:04}_{}.sql", m.version, m.name),
            source: e,
        })?;
        tx.execute(
            "INSERT INTO hptune_migrations VALUES (?, ?, ?, current_timestamp::TIMESTAMP, ?)",
            duckdb::params![m.version, m.name, m.checksum(), crate::VERSION],
        )?;
        tx.commit()?;
        created |= m.version == 1;
    }
    Ok(created)
}
