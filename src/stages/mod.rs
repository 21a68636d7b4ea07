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

use std::path::{Path, PathBuf};

/// Moves an existing output folder aside (`NAME.YYYYmmdd-HHMMSS`) so that nothing is overwritten;
/// returns where it went.
pub fn move_aside(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    if !dir.exists() {
        return Ok(None);
    }
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut target = PathBuf::from(format!("{}.{stamp}", dir.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.{stamp}-{n}", dir.display()));
        n += 1;
    }
    std::fs::rename(dir, &target)?;
    Ok(Some(target))
}
