//! The seed's pre-flight checklist, per stage: inputs present, disk space, device. `hptune check`
//! prints it; `hptune pipeline` stops on a failed check before running anything.

use std::path::Path;

use crate::model::Device;
use crate::states::{RunStatus, TrialState};
use crate::store::Store;

/// Free space below this fails the disk check (checkpoints and exports of a pipeline run).
pub const MIN_FREE_BYTES: u64 = 500 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Not there yet: an earlier stage makes it (fine inside a pipeline run).
    Missing,
    Failed,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub stage: &'static str,
    pub item: String,
    pub status: Status,
    /// What was found, or what to do.
    pub detail: String,
}

fn check(stage: &'static str, item: &str, status: Status, detail: String) -> Check {
    Check { stage, item: item.into(), status, detail }
}

/// Free bytes on the file system holding `dir` (or its nearest existing parent).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let existing = dir.ancestors().find(|p| p.exists() && !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let s = rustix::fs::statvfs(existing)?;
    Ok(s.f_bavail * s.f_frsize)
}

/// The checklist of every stage for `dataset` on `device`, with outputs under `out_dir`.
pub fn checklist(store: &Store, dataset: &str, device: Device, out_dir: &Path) -> anyhow::Result<Vec<Check>> {
    Ok(vec![
        dataset_check(store, dataset),
        disk_check(out_dir),
        device_check(device),
        study_check(store)?,
        extended_check(store)?,
        selection_check(store)?,
        model_check(store)?,
    ])
}

fn dataset_check(store: &Store, dataset: &str) -> Check {
    match store.dataset(dataset) {
        Ok(d) => check(
            "tune",
            "dataset",
            Status::Ok,
            format!("{} ({} tickers, {} .. {})", d.name, d.tickers.len(), d.first_date, d.last_date),
        ),
        Err(e) => check("tune", "dataset", Status::Failed, format!("{e}; `hptune data list` shows what is there")),
    }
}

fn disk_check(out_dir: &Path) -> Check {
    match free_bytes(out_dir) {
        Ok(b) if b >= MIN_FREE_BYTES => {
            check("all", "disk space", Status::Ok, format!("{:.1} GB free", b as f64 / 1e9))
        }
        Ok(b) => check(
            "all",
            "disk space",
            Status::Failed,
            format!(
                "{:.0} MB free under {}; free at least {} MB",
                b as f64 / 1e6,
                out_dir.display(),
                MIN_FREE_BYTES / 1_000_000
            ),
        ),
        Err(e) => {
            check("all", "disk space", Status::Failed, format!("cannot read free space of {}: {e}", out_dir.display()))
        }
    }
}

fn device_check(device: Device) -> Check {
    match crate::model::device(device) {
        Ok(_) => check("all", "device", Status::Ok, device.to_string()),
        Err(e) => check("all", "device", Status::Failed, format!("{e:#}")),
    }
}

fn study_check(store: &Store) -> anyhow::Result<Check> {
    let study = store.latest_study()?;
    let finished = match &study {
        Some(s) => store.trials(s)?.iter().filter(|t| t.state == TrialState::Complete).count(),
        None => 0,
    };
    Ok(match &study {
        Some(s) if finished > 0 => {
            check("extend", "tuned study", Status::Ok, format!("{s}: {finished} finished trials"))
        }
        Some(s) => check(
            "extend",
            "tuned study",
            Status::Missing,
            format!("{s} has no finished trials: run `hptune tune --study {s}`"),
        ),
        None => check("extend", "tuned study", Status::Missing, "no study: run `hptune tune`".into()),
    })
}

fn extended_check(store: &Store) -> anyhow::Result<Check> {
    let extended = store.latest_extended_run(None)?;
    Ok(match &extended {
        Some(id) => {
            let run = store.extended_run(id)?;
            if run.status == RunStatus::Finished {
                check("analyze", "extended run", Status::Ok, format!("{id} ({} x {})", run.top_n, run.cv().describe()))
            } else {
                check(
                    "analyze",
                    "extended run",
                    Status::Missing,
                    format!("{id} is {}: run `hptune extend --resume {id}`", run.status),
                )
            }
        }
        None => check("analyze", "extended run", Status::Missing, "none: run `hptune extend`".into()),
    })
}

fn selection_check(store: &Store) -> anyhow::Result<Check> {
    Ok(match store.selection(None)? {
        Some(s) => check(
            "train",
            "selected configuration",
            Status::Ok,
            format!("{} (trial {} of {})", s.selection_id, s.trial_number, s.study_name),
        ),
        None => check("train", "selected configuration", Status::Missing, "none: run `hptune analyze`".into()),
    })
}

/// The model a backtest would use, and whether its file or bytes are there.
fn model_check(store: &Store) -> anyhow::Result<Check> {
    Ok(match super::backtest::recorded_model(store)? {
        Some((_, record, why)) => {
            let file = Path::new(&record.path);
            if file.exists() || store.has_checkpoint_file(&record.sha256)? {
                check("backtest", "model", Status::Ok, why)
            } else {
                check(
                    "backtest",
                    "model",
                    Status::Failed,
                    format!("{why}: {} is gone and its bytes are not in the database; retrain", record.path),
                )
            }
        }
        None => check(
            "backtest",
            "model",
            Status::Missing,
            "none: run `hptune train` (or the default configuration is trained)".into(),
        ),
    })
}
