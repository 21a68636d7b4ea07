//! The seed's pre-flight checklist, per stage: inputs present, disk space, device. `hptune check`
//! prints it; `hptune pipeline` stops on a failed check before running anything.

use std::path::Path;

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
    let p = std::fs::canonicalize(existing);
    let c = std::ffi::CString::new(p?.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and s a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

/// The checklist of every stage for `dataset` on `device`, with outputs under `out_dir`.
pub fn checklist(store: &Store, dataset: &str, device: &str, out_dir: &Path) -> anyhow::Result<Vec<Check>> {
    let mut list = Vec::new();
    match store.dataset(dataset) {
        Ok(d) => list.push(check(
            "tune",
            "dataset",
            Status::Ok,
            format!("{} ({} tickers, {} .. {})", d.name, d.tickers.len(), d.first_date, d.last_date),
        )),
        Err(e) => {
            list.push(check("tune", "dataset", Status::Failed, format!("{e}; `hptune data list` shows what is there")))
        }
    }
    list.push(match free_bytes(out_dir) {
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
    });
    list.push(match crate::model::device(device) {
        Ok(_) => check("all", "device", Status::Ok, device.to_string()),
        Err(e) => check("all", "device", Status::Failed, format!("{e:#}")),
    });
    let study = store.latest_study()?;
    let finished = match &study {
        Some(s) => store.trials(s)?.iter().filter(|t| t.state == "COMPLETE").count(),
        None => 0,
    };
    list.push(match &study {
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
    });
    let extended = store.latest_extended_run(None)?;
    list.push(match &extended {
        Some(id) => {
            let run = store.extended_run(id)?;
            if run.status == "finished" {
                check("analyze", "extended run", Status::Ok, format!("{id} ({} x {} folds)", run.top_n, run.n_folds))
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
    });
    list.push(match store.selection(None)? {
        Some(s) => check(
            "train",
            "selected configuration",
            Status::Ok,
            format!("{} (trial {} of {})", s.selection_id, s.trial_number, s.study_name),
        ),
        None => check("train", "selected configuration", Status::Missing, "none: run `hptune analyze`".into()),
    });
    list.push(match store.model_candidates()?.into_iter().next() {
        Some((_, record, why)) => {
            let file = Path::new(&record.path);
            if file.exists() || store.checkpoint_file(&record.sha256)?.is_some() {
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
    });
    Ok(list)
}
