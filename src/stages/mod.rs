//! The pipeline's stages: each reads what it needs from the store, runs the numeric core, records
//! its results in the store, and exports the compatibility files from the recorded rows.

pub(crate) mod analyze;
pub(crate) mod backtest;
pub(crate) mod check;
pub(crate) mod clean;
pub(crate) mod export;
pub(crate) mod extend;
pub(crate) mod pipeline;
pub(crate) mod pull;
pub(crate) mod report;
pub mod train;
pub(crate) mod tune;
pub(crate) mod verdict;
pub(crate) mod warm_start;

use std::path::{Path, PathBuf};

use crate::store::Store;

/// Moves an output folder (or file) aside (`NAME.YYYYmmdd-HHMMSS`), records that this database
/// moved it (`hptune clean` sweeps only such), and points the recorded checkpoint paths under it
/// to their new place, so that lineage survives; returns where it went.
pub(crate) fn set_aside(store: &Store, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let old = std::fs::canonicalize(dir).ok();
    let moved = crate::files::move_aside(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::ResourceBusy => {
            anyhow::anyhow!("{e}: wait until it finishes, or write elsewhere with --out DIR")
        }
        _ => anyhow::Error::new(e).context(format!("moving {} aside", dir.display())),
    })?;
    if let (Some(old), Some(new)) = (old, &moved) {
        let new = std::fs::canonicalize(new)?;
        store.record_moved_aside(&old.to_string_lossy(), &new.to_string_lossy())?;
        store.relocate_checkpoints(&old.to_string_lossy(), &new.to_string_lossy())?;
    }
    Ok(moved)
}

/// The run an export file belongs to: the string at JSON `pointer` in `file`, if readable.
pub(crate) fn owner_of(file: &Path, pointer: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.pointer(pointer)?.as_str().map(str::to_string)
}

/// Sets `dir` aside when its export `file` belongs to another run (the string at JSON `pointer`
/// is not `owner`): a resumed older run or an export then never writes among another run's files.
/// A folder without that file (a run that stopped before its export) stays.
pub(crate) fn set_aside_unless_owned(
    store: &Store,
    dir: &Path,
    (file, pointer): (&str, &str),
    owner: &str,
) -> anyhow::Result<Option<PathBuf>> {
    match owner_of(&dir.join(file), pointer) {
        Some(other) if other != owner => set_aside(store, dir),
        _ => Ok(None),
    }
}

/// Marks the training and extended runs whose process is gone (killed, crashed) as failed, reason
/// `interrupted`, and says which: what a stage does before it starts its own.
pub(crate) fn fail_orphaned_runs(store: &Store) -> anyhow::Result<()> {
    let failed = store.fail_orphaned_runs(crate::workers::is_gone)?;
    if !failed.is_empty() {
        eprintln!(
            "marked {} run(s) whose process is gone as failed (interrupted): {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Runs `work` while a thread calls `renew` every `workers::HEARTBEAT_EVERY_S` (a heartbeat), so
/// that other processes never take this one's trials or runs for orphans.
pub(crate) fn with_heartbeat<T>(renew: impl Fn() -> crate::store::Result<()> + Sync, work: impl FnOnce() -> T) -> T {
    with_heartbeat_every(std::time::Duration::from_secs(crate::workers::HEARTBEAT_EVERY_S), renew, work)
}

/// `with_heartbeat`, renewing every `every`.
pub(crate) fn with_heartbeat_every<T>(
    every: std::time::Duration,
    renew: impl Fn() -> crate::store::Result<()> + Sync,
    work: impl FnOnce() -> T,
) -> T {
    std::thread::scope(|scope| {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let renew = &renew;
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if let Err(e) = renew() {
                    eprintln!("note: could not renew this process's heartbeat: {e}");
                }
            }
        });
        let out = work();
        drop(stop);
        out
    })
}

/// The heartbeat of this process's running training and extended runs.
pub(crate) fn renew_runs(store: &Store) -> impl Fn() -> crate::store::Result<()> + Sync + '_ {
    let worker = crate::workers::name();
    move || store.heartbeat_runs(&worker)
}

/// Refuses training whose samples (every window of `seq_len` days over `table`, as f32) would need
/// more memory than the machine has available, before anything is recorded.
pub(crate) fn check_memory(table: &crate::features::FeatureTable, seq_len: usize, what: &str) -> anyhow::Result<()> {
    // The pooled layout's samples carry the market's features beside each ticker's: twice the
    // joint layout's, and what is checked.
    let needed = (table.dates.len() as u64) * (seq_len as u64) * (2 * table.width() as u64) * 4;
    let Some(available) = available_memory() else { return Ok(()) };
    if needed > available {
        anyhow::bail!(
            "{what} would need about {:.1} GB for its samples ({} days x {seq_len} x {} features), and {:.1} GB is \
             available: use a shorter seq_len, fewer tickers or a shorter dataset",
            needed as f64 / 1e9,
            table.dates.len(),
            2 * table.width(),
            available as f64 / 1e9
        );
    }
    Ok(())
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
