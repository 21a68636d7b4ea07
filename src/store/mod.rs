//! The store: `experiments.db`, a DuckDB file, and the only module that holds SQL besides `sql/`
//! and `migrations/`.
//!
//! Why it opens the file per operation: DuckDB lets one process hold a file read-write, and a
//! read-only open fails while a writer holds it. So the store holds the file only while it reads
//! or writes, and on a lock conflict waits (with backoff) up to the lock timeout before it gives
//! up with a message naming what it waited for. A `hptune query` in a second terminal, or a second
//! worker, then interleaves with a long-running job instead of failing.

mod annotations;
mod backtest;
mod clean;
mod conn;
mod extended;
mod merge;
mod migrate;
pub mod optuna_sqlite;
mod outcomes;
mod provenance;
mod pull;
mod report;
mod seeds;
pub mod server;
mod states_sql;
mod study_home;
mod training;
mod tuning;
mod user_sql;
mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use duckdb::arrow::array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
use duckdb::arrow::datatypes::SchemaRef;
use duckdb::{params, Connection};

pub use annotations::Note;
pub use backtest::{BacktestRecord, EquityRow, FoldPick, SignalRow, StatRow, TradeRow};
pub use clean::{CleanReason, Cleanable, Cleanup};
pub use extended::{BestConfig, ExtendedConfig, ExtendedRun, FoldRecord, PathRecord, PathResult, PathStats, Selection};
pub use merge::Merged;
pub use migrate::{Migration, MIGRATIONS};
pub use outcomes::{BaselineRecord, OutcomeSeries, ValidityRecord};
pub use provenance::{FactPair, DIFF_KINDS};
pub use report::{HistoryPoint, TextTable};
pub use seeds::Seed;
pub use study_home::StudyHome;
pub use training::{CheckpointRecord, Lineage, NewRun, RunRecord, SavedCheckpoint};
pub use tuning::{Finished, StudyRecord, TrialEnd, TrialRecord};
pub use views::{find as views_find, View, VIEWS};

use crate::data::{self, Panel};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("gave up after {waited:.1} s waiting for {path}: another process holds it ({detail})")]
    Locked { path: PathBuf, waited: f64, detail: String },
    #[error(
        "{path} was written by a newer hptune (schema version {found}; this hptune knows up to {known}). \
         Upgrade hptune to open it"
    )]
    NewerSchema { path: PathBuf, found: i32, known: i32 },
    #[error(
        "{path}: migration {migration} differs from the one applied to this database \
         (checksum {recorded} there, {current} in this hptune). A landed migration is never edited: \
         restore it and put the change in a new migration"
    )]
    MigrationChanged { path: PathBuf, migration: String, recorded: String, current: String },
    #[error("migration {migration} failed")]
    MigrationFailed { migration: String, source: duckdb::Error },
    #[error("the name '{name}' is taken by a different dataset ({dataset_id}) in {path}")]
    NameTaken { name: String, dataset_id: String, path: PathBuf },
    #[error("no dataset named '{name}' in {path}")]
    NoDataset { name: String, path: PathBuf },
    #[error("hptune query refused this statement: {0}")]
    ReadOnly(String),
    #[error("hptune query refused this statement: {0}; it runs with DuckDB's external access off and reads the database only")]
    ExternalAccess(String),
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0}")]
    NotFound(String),
    #[error("study {study} has {failed} failed trials (more than {max})")]
    TooManyFailures { study: String, failed: usize, max: usize },
    #[error("the database holds inconsistent data: {0}")]
    Corrupt(String),
    #[error("could not put the compacted copy of {path} in its place ({source}); the file is as it was")]
    Compact { path: PathBuf, source: std::io::Error },
    #[error("could not create {path} ({source})")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Duckdb { path: PathBuf, source: duckdb::Error },
    #[error(transparent)]
    Sql(#[from] duckdb::Error),
    #[error(transparent)]
    Server(#[from] server::ServerError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What importing a panel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    New {
        dataset_id: String,
    },
    /// The same content is already stored, under this name.
    AlreadyPresent {
        dataset_id: String,
        name: String,
    },
}

/// A dataset's description, as `hptune data show` prints it.
#[derive(Debug, Clone)]
pub struct DatasetInfo {
    pub name: String,
    pub dataset_id: String,
    pub content_hash: String,
    pub source: String,
    pub tickers: Vec<String>,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub n_dates: i64,
    pub rows: i64,
    pub missing_cells: i64,
    pub has_ohlcv: bool,
}

/// Per-ticker coverage of a dataset.
#[derive(Debug, Clone)]
pub struct TickerCoverage {
    pub ticker: String,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub rows: i64,
    pub missing_dates: i64,
}

pub struct Store {
    path: PathBuf,
    /// How long to wait for another process that holds the file; None: as long as it takes (the
    /// stages' bookkeeping, so that contention never costs a trial, fold or run).
    lock_timeout: Option<Duration>,
}

pub use conn::release;
pub(crate) use conn::Conn;

impl Store {
    pub fn new(path: impl Into<PathBuf>, lock_timeout: Option<Duration>) -> Self {
        Self { path: path.into(), lock_timeout }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-write connection on an up-to-date schema. A new file gets the shipped datasets.
    fn writer(&self) -> Result<Conn> {
        self.create_if_missing()?;
        let (mut conn, opened) = conn::acquire(&self.path, true, self.lock_timeout)?;
        if opened {
            if let Err(e) = self.set_up(&mut conn) {
                conn.discard();
                return Err(e);
            }
        }
        Ok(conn)
    }

    /// Makes the database when the file is missing: it is set up under a private name beside it
    /// and then linked to its name, so that no process ever opens a half-made file. (DuckDB
    /// creates a new file before it locks it; a second process that opened it in between read an
    /// empty header: "not a valid DuckDB database file".) Of processes that make it at once, the
    /// first link wins and the others' files are removed.
    fn create_if_missing(&self) -> Result<()> {
        if self.path.exists() {
            return Ok(());
        }
        let private = crate::files::partial_path(&self.path);
        let made = (|| {
            let _ = std::fs::remove_file(&private);
            let mut conn =
                conn::open(&private, true).map_err(|source| StoreError::Duckdb { path: self.path.clone(), source })?;
            self.set_up(&mut conn)
            // Closing checkpoints: the file is whole, without a write-ahead log.
        })()
        .and_then(|()| match std::fs::hard_link(&private, &self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            // A file system without hard links: a rename, which another process making the
            // file at the same instant could replace (nothing is in it yet to lose).
            Err(_) if !self.path.exists() => std::fs::rename(&private, &self.path)
                .map_err(|source| StoreError::Create { path: self.path.clone(), source }),
            _ => Ok(()),
        });
        let _ = std::fs::remove_file(&private);
        let _ = std::fs::remove_file(crate::files::wal_path(&private));
        made
    }

    /// Brings a file just opened read-write up to date: migrations, views, and the shipped
    /// datasets in a new file.
    fn set_up(&self, conn: &mut Connection) -> Result<()> {
        let created = migrate::run(conn, &self.path)?;
        views::apply(conn)?;
        if created {
            for shipped in data::SHIPPED {
                let panel = data::read_long_csv(shipped.csv.as_bytes(), Path::new(shipped.file))
                    .expect("shipped data is valid");
                insert_panel(conn, &self.path, shipped.name, &format!("{} (shipped)", shipped.file), &panel)?;
            }
        }
        Ok(())
    }

    /// A read-only connection (or the read-write one this process holds). Creates or upgrades
    /// the file first when it needs it.
    fn reader(&self) -> Result<Conn> {
        self.create_if_missing()?;
        let (conn, opened) = self.open_read_only()?;
        if !opened {
            return Ok(conn);
        }
        let up_to_date = match migrate::verify(&conn, &self.path).and_then(|_| migrate::applied_version(&conn)) {
            Ok(version) => version == Some(migrate::latest()),
            Err(e) => {
                conn.discard();
                return Err(e);
            }
        };
        if up_to_date && views::current(&conn) {
            return Ok(conn);
        }
        // An older schema, or views of another hptune version: bring them up to date when the
        // file is writable (a fresh read-write open sets the file up).
        drop(conn);
        conn::release();
        match self.writer() {
            Ok(conn) => Ok(conn),
            Err(e) if up_to_date => {
                eprintln!(
                    "note: the views of {} are not this hptune's and could not be updated: {e}",
                    self.path.display()
                );
                Ok(self.open_read_only()?.0)
            }
            Err(e) => Err(e),
        }
    }

    fn open_read_only(&self) -> Result<(Conn, bool)> {
        conn::acquire(&self.path, false, self.lock_timeout)
    }

    /// Stores a panel under `name` in one transaction. The same content twice adds nothing.
    pub fn import_panel(&self, name: &str, source: &str, panel: &Panel) -> Result<Imported> {
        let mut conn = self.writer()?;
        insert_panel(&mut conn, &self.path, name, source, panel)
    }

    /// The dataset with this id, if it is still in the file.
    pub fn dataset_by_id(&self, dataset_id: &str) -> Result<Option<DatasetInfo>> {
        Ok(self.datasets()?.into_iter().find(|d| d.dataset_id == dataset_id))
    }

    /// Every dataset, in import order (the `datasets_overview` view).
    pub fn datasets(&self) -> Result<Vec<DatasetInfo>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT o.name, o.dataset_id, d.content_hash, o.source, o.tickers, o.first_date, o.last_date,
                        o.n_dates, o.rows, o.missing_cells, o.has_ohlcv
                 FROM datasets_overview o JOIN datasets d USING (dataset_id)",
            )?
            .query_map([], |r| {
                let tickers: String = r.get(4)?;
                Ok(DatasetInfo {
                    name: r.get(0)?,
                    dataset_id: r.get(1)?,
                    content_hash: r.get(2)?,
                    source: r.get(3)?,
                    tickers: tickers.split(',').map(str::to_string).collect(),
                    first_date: r.get(5)?,
                    last_date: r.get(6)?,
                    n_dates: r.get(7)?,
                    rows: r.get(8)?,
                    missing_cells: r.get(9)?,
                    has_ohlcv: r.get(10)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn dataset(&self, name: &str) -> Result<DatasetInfo> {
        self.datasets()?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| StoreError::NoDataset { name: name.to_string(), path: self.path.clone() })
    }

    pub fn ticker_coverage(&self, name: &str) -> Result<Vec<TickerCoverage>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT ticker, first_date, last_date, rows, missing_dates
                 FROM ticker_coverage WHERE dataset = ? ORDER BY position",
            )?
            .query_map([name], |r| {
                Ok(TickerCoverage {
                    ticker: r.get(0)?,
                    first_date: r.get(1)?,
                    last_date: r.get(2)?,
                    rows: r.get(3)?,
                    missing_dates: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Runs a user's `sql` (one reading statement, see `user_sql`) on a read-only connection and
    /// hands its result, streamed as Arrow record batches, to `sink`. The file is held until
    /// `sink` returns.
    pub fn query_arrow<T>(
        &self,
        sql: &str,
        sink: impl FnOnce(SchemaRef, &mut dyn Iterator<Item = duckdb::Result<RecordBatch>>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let sql = user_sql::statement(sql)?;
        let conn = self.existing_reader()?;
        let result = (|| {
            user_sql::sandbox(&conn)?;
            let mut stmt = conn.prepare(sql).map_err(user_sql::hint)?;
            let mut stream = stmt.stream_arrow([]).map_err(user_sql::hint)?;
            let schema = stream.get_schema();
            sink(schema, &mut stream)
        })();
        conn.discard();
        result
    }

    /// A read-only connection to a file that must exist already, without migrating it: what
    /// `hptune query` reads. An older schema is read as it is.
    fn existing_reader(&self) -> Result<Conn> {
        if !self.path.exists() {
            return Err(StoreError::NoDatabase(self.path.clone()));
        }
        let (conn, opened) = self.open_read_only()?;
        if opened {
            migrate::check_not_newer(&conn, &self.path)?;
        }
        Ok(conn)
    }
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

fn insert_panel(conn: &mut Connection, path: &Path, name: &str, source: &str, panel: &Panel) -> Result<Imported> {
    let hash = panel.content_hash();
    let dataset_id = hash[..16].to_string();
    let tx = conn.transaction()?;
    let existing: Option<String> = tx
        .query_row("SELECT name FROM datasets WHERE content_hash = ?", [&hash], |r| r.get(0))
        .map(Some)
        .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
    if let Some(existing) = existing {
        return Ok(Imported::AlreadyPresent { dataset_id, name: existing });
    }
    let taken: Option<String> = tx
        .query_row("SELECT dataset_id FROM datasets WHERE name = ?", [name], |r| r.get(0))
        .map(Some)
        .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
    if let Some(other) = taken {
        return Err(StoreError::NameTaken { name: name.to_string(), dataset_id: other, path: path.to_path_buf() });
    }
    tx.execute(
        "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP)",
        params![
            dataset_id,
            name,
            hash,
            source,
            panel.has_ohlcv(),
            panel.tickers.len() as i32,
            panel.n_dates() as i32,
            panel.bars.len() as i64,
            panel.first_date(),
            panel.last_date(),
            crate::VERSION,
        ],
    )?;
    {
        let mut app = tx.appender("dataset_tickers")?;
        for (i, t) in panel.tickers.iter().enumerate() {
            app.append_row(params![dataset_id, i as i32, t])?;
        }
        app.flush()?;
    }
    {
        // Arrow batches through the appender: several times faster than row-by-row appends.
        let mut app = tx.appender("prices")?;
        const CHUNK: usize = 1 << 16;
        for bars in panel.bars.chunks(CHUNK) {
            let n = bars.len();
            let opt = |f: fn(&data::Bar) -> Option<f64>| -> ArrayRef {
                Arc::new(bars.iter().map(f).collect::<Float64Array>())
            };
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(vec![dataset_id.as_str(); n])),
                Arc::new(Date32Array::from_iter_values(bars.iter().map(|b| days_since_epoch(b.date)))),
                Arc::new(StringArray::from_iter_values(bars.iter().map(|b| &panel.tickers[b.ticker as usize]))),
                opt(|b| b.open),
                opt(|b| b.high),
                opt(|b| b.low),
                Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.close))),
                opt(|b| b.volume),
            ];
            let batch = RecordBatch::try_from_iter(
                ["dataset_id", "date", "ticker", "open", "high", "low", "close", "volume"].into_iter().zip(columns),
            )
            .expect("columns have equal lengths");
            app.append_record_batch(batch)?;
        }
        app.flush()?;
    }
    tx.commit()?;
    Ok(Imported::New { dataset_id })
}
