//! `hptune merge OTHER.db`: another experiments database's rows copied into this one, in one
//! transaction, keeping their ids (and so their lineage).
//!
//! Every table is copied by content: the rows of OTHER that this file does not hold (a multiset
//! difference over the columns both files have, so a second merge adds nothing). Datasets are
//! copied by content hash: one this file holds already adds nothing, its prices included. A new row
//! whose key this file holds with other content is a conflict: the merge is refused naming it,
//! with nothing written. OTHER is attached read-only and never changed; a file of a newer hptune
//! is refused, an older one is read as it is (its missing columns stay empty here).

use std::path::Path;

use super::{migrate, Result, Store, StoreError};

/// Machine-local or hptune's own bookkeeping: never copied (`moved_aside` holds paths on the
/// other machine, which this one's `clean` must not remove).
const NOT_COPIED: [&str; 3] = ["hptune_migrations", "hptune_views", "moved_aside"];
/// Copied by dataset: only datasets this file does not hold.
const BY_DATASET: [&str; 3] = ["datasets", "dataset_tickers", "prices"];

/// What a merge copied (or, with `--dry-run`, would copy).
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// OTHER's schema version.
    pub other_version: i32,
    /// Rows per table, in table order (only tables with rows to copy).
    pub rows: Vec<(String, u64)>,
    /// OTHER's datasets this file holds already (by content hash).
    pub datasets_present: u64,
}

impl Store {
    pub fn merge(&self, other: &Path, dry_run: bool) -> Result<Merged> {
        if !other.is_file() {
            return Err(StoreError::NotFound(format!("{}: no such database file to merge", other.display())));
        }
        let same = std::fs::canonicalize(other).ok() == std::fs::canonicalize(&self.path).ok();
        if same {
            return Err(StoreError::NotFound(format!("{} is this database: nothing to merge", other.display())));
        }
        // A DuckDB file says so at byte 8; anything else (a CSV, a SQLite file) gets a plain answer
        // instead of the error DuckDB's ATTACH gives for it.
        let mut head = [0u8; 12];
        let is_duckdb = std::fs::File::open(other)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok_and(|()| &head[8..12] == b"DUCK");
        if !is_duckdb {
            return Err(StoreError::NotFound(format!(
                "{} is not a DuckDB database file: merge copies another hptune experiments.db",
                other.display()
            )));
        }
        let mut conn = self.writer()?;
        let quoted = other.to_string_lossy().replace('\'', "''");
        conn.execute_batch(&format!("ATTACH '{quoted}' AS merge_src (READ_ONLY, TYPE duckdb)"))
            .map_err(|e| StoreError::Duckdb { path: other.to_path_buf(), source: e })?;
        let result = copy(&mut conn, other, dry_run);
        let _ = conn.execute_batch("DETACH merge_src");
        result
    }
}

fn copy(conn: &mut duckdb::Connection, other: &Path, dry_run: bool) -> Result<Merged> {
    let has_ledger: bool = conn.query_row(
        "SELECT count(*) > 0 FROM duckdb_tables() WHERE database_name = 'merge_src' AND table_name = 'hptune_migrations'",
        [],
        |r| r.get(0),
    )?;
    if !has_ledger {
        return Err(StoreError::NotFound(format!(
            "{} is not an hptune database (it has no hptune_migrations)",
            other.display()
        )));
    }
    let other_version: i32 =
        conn.query_row("SELECT coalesce(max(version), 0) FROM merge_src.hptune_migrations", [], |r| r.get(0))?;
    if other_version > migrate::latest() {
        return Err(StoreError::NewerSchema {
            path: other.to_path_buf(),
            found: other_version,
            known: migrate::latest(),
        });
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT table_name FROM duckdb_tables()
             WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal ORDER BY table_name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<duckdb::Result<Vec<String>>>()?
        .into_iter()
        .filter(|t| !NOT_COPIED.contains(&t.as_str()))
        .collect();
    let mut merged = Merged { other_version, ..Merged::default() };
    let name_clash: Option<String> = conn.query_row(
        "SELECT min(o.name) FROM merge_src.datasets o JOIN datasets m ON m.name = o.name AND m.dataset_id <> o.dataset_id",
        [],
        |r| r.get(0),
    )?;
    if let Some(name) = name_clash {
        return Err(StoreError::NotFound(format!(
            "merge refused: dataset '{name}' of {} holds other data than '{name}' here; nothing was written \
             (rename one: `hptune data import ... --name`)",
            other.display()
        )));
    }
    merged.datasets_present = conn.query_row(
        "SELECT count(*) FROM merge_src.datasets WHERE dataset_id IN (SELECT dataset_id FROM datasets)",
        [],
        |r| r.get(0),
    )?;
    let tx = conn.transaction()?;
    // Each table's new rows are fixed before anything is inserted (a dataset's prices are new
    // when the dataset is, whatever the order of the tables).
    tx.execute_batch(
        "CREATE TEMP TABLE merge_new_datasets AS
         SELECT dataset_id FROM merge_src.datasets WHERE dataset_id NOT IN (SELECT dataset_id FROM main.datasets)",
    )?;
    let mut planned = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let columns = common_columns(&tx, table)?;
        if columns.is_empty() {
            continue;
        }
        let cols = columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let new_rows = if BY_DATASET.contains(&table.as_str()) {
            format!("SELECT {cols} FROM merge_src.\"{table}\" WHERE dataset_id IN (SELECT dataset_id FROM merge_new_datasets)")
        } else {
            format!("SELECT {cols} FROM merge_src.\"{table}\" EXCEPT ALL SELECT {cols} FROM main.\"{table}\"")
        };
        let temp = format!("merge_new_{i}");
        tx.execute_batch(&format!("CREATE TEMP TABLE {temp} AS {new_rows}"))?;
        let n: i64 = tx.query_row(&format!("SELECT count(*) FROM {temp}"), [], |r| r.get(0))?;
        if n == 0 {
            tx.execute_batch(&format!("DROP TABLE {temp}"))?;
            continue;
        }
        let key = primary_key(&tx, table)?;
        if !key.is_empty() {
            let k = key.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            let named = key.iter().map(|c| format!("'{c}=' || n.\"{c}\"")).collect::<Vec<_>>().join(", ");
            let clash: Option<String> = tx.query_row(
                &format!(
                    "SELECT min(concat_ws(', ', {named})) FROM {temp} n WHERE ({k}) IN (SELECT ({k}) FROM main.\"{table}\")"
                ),
                [],
                |r| r.get(0),
            )?;
            if let Some(clash) = clash {
                return Err(StoreError::NotFound(format!(
                    "merge refused: {table} {clash} is in both files with other content; nothing was written"
                )));
            }
        }
        planned.push((table.clone(), cols, temp, n as u64));
    }
    for (table, cols, temp, n) in planned {
        if !dry_run {
            tx.execute_batch(&format!("INSERT INTO main.\"{table}\" ({cols}) SELECT * FROM {temp}"))?;
        }
        tx.execute_batch(&format!("DROP TABLE {temp}"))?;
        merged.rows.push((table, n));
    }
    tx.execute_batch("DROP TABLE merge_new_datasets")?;
    if dry_run {
        tx.rollback()?;
    } else {
        tx.commit()?;
    }
    Ok(merged)
}

/// The columns of `table` both files have, in this file's order.
fn common_columns(conn: &duckdb::Connection, table: &str) -> Result<Vec<String>> {
    let rows = conn
        .prepare(
            "SELECT m.column_name FROM duckdb_columns() m
             JOIN duckdb_columns() o ON o.database_name = 'merge_src' AND o.table_name = m.table_name
                                    AND o.column_name = m.column_name
             WHERE m.database_name = current_database() AND m.table_name = ? ORDER BY m.column_index",
        )?
        .query_map([table], |r| r.get(0))?
        .collect::<duckdb::Result<_>>()?;
    Ok(rows)
}

/// The primary key columns of `table` in this file (none for a table without one).
fn primary_key(conn: &duckdb::Connection, table: &str) -> Result<Vec<String>> {
    let key: Option<String> = conn.query_row(
        "SELECT max(array_to_string(constraint_column_names, ',')) FROM duckdb_constraints()
         WHERE database_name = current_database() AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
        |r| r.get(0),
    )?;
    Ok(key.map(|k| k.split(',').map(str::to_string).collect()).unwrap_or_default())
}
