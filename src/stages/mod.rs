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

use crate::store::Store;

/// Moves an output folder aside (`NAME.YYYYmmdd-HHMMSS`) and points the recorded checkpoint paths
/// under it to their new place, so that lineage survives; returns where it went.
pub(crate) fn set_aside(store: &Store, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let old = std::fs::canonicalize(dir).ok();
    let moved = crate::files::move_aside(dir)?;
    if let (Some(old), Some(new)) = (old, &moved) {
        store.relocate_checkpoints(&old.to_string_lossy(), &std::fs::canonicalize(new)?.to_string_lossy())?;
    }
    Ok(moved)
}

/// Sets `dir` aside when the export `file` in it belongs to another run (its JSON `key` is not
/// `owner`): a resumed older run then never writes its files among a newer run's.
pub(crate) fn set_aside_unless_owned(
    store: &Store,
    dir: &Path,
    (file, key): (&str, &str),
    owner: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let owned_by = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json.get(key).and_then(|v| v.as_str()).map(str::to_string));
    match owned_by {
        Some(other) if other != owner => set_aside(store, dir),
        _ => Ok(None),
    }
}
