//! hptune: tune, validate, train and backtest next-day direction models on market data, with
//! every stage recorded in one DuckDB file.
//!
//! Dependencies point one way: `cli` -> stages -> {`data`, ...} and `store`. The numeric and data
//! modules never touch the database; `store` owns every SQL string outside `sql/` and
//! `migrations/`.

pub mod backtest;
pub mod checkpoint;
pub mod cli;
pub mod cv;
pub mod data;
pub mod features;
pub mod model;
pub mod output;
pub mod plot;
pub mod progress;
pub mod search;
pub mod split;
pub mod stages;
pub mod store;

/// The hptune version, recorded with everything it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
