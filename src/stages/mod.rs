//! The pipeline's stages: each reads what it needs from the store, runs the numeric core, records
//! its results in the store, and exports the compatibility files from the recorded rows.

pub mod analyze;
pub mod backtest;
pub mod check;
pub mod export;
pub mod extend;
pub mod optuna_export;
pub mod pipeline;
pub mod train;
pub mod tune;
