//! `hptune clean`: what may go (moved-aside outputs, and the weights of trials and folds nobody
//! needs), how many bytes each frees, and removing it. Only weights go: every row of the record
//! stays, and a cleaned checkpoint's row says which cleanup took its file and stored bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::checkpoint::sha256_hex;
use crate::store::{CheckpointRecord, CleanReason, Cleanable, Cleanup, Store};

/// What to clean.
pub struct Request {
    pub keep_top: usize,
    pub older_than_days: Option<u32>,
}

/// One line of the plan: a moved-aside output, or the checkpoints of one study, extended run or
/// run that go for one reason.
#[derive(Debug, Default, serde::Serialize)]
pub struct Item {
    pub what: String,
    pub why: String,
    /// Files removed from disk, and their bytes.
    pub files: usize,
    pub disk_bytes: u64,
    /// Checkpoints whose weights go, and the stored bytes that frees in the database.
    pub checkpoints: usize,
    pub database_bytes: u64,
    #[serde(skip)]
    remove: Vec<PathBuf>,
    #[serde(skip)]
    folder: Option<PathBuf>,
}

/// Everything a clean would remove.
#[derive(Debug, serde::Serialize)]
pub struct Plan {
    pub items: Vec<Item>,
    /// Moved-aside outputs left alone because a running process writes into them.
    pub busy: Vec<PathBuf>,
    #[serde(skip)]
    cleaning: Vec<CheckpointRecord>,
}

impl Plan {
    pub fn disk_bytes(&self) -> u64 {
        self.items.iter().map(|i| i.disk_bytes).sum()
    }
    pub fn database_bytes(&self) -> u64 {
        self.items.iter().map(|i| i.database_bytes).sum()
    }
}

/// What `apply` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Applied {
    pub cleanup_id: Option<String>,
    pub files_removed: usize,
    pub disk_bytes: u64,
    pub database_bytes: u64,
    /// The database file's size before and after compaction; None when it was not compacted.
    pub compacted: Option<(u64, u64)>,
    /// Why the file was not compacted.
    pub not_compacted: Option<String>,
}

/// Works out what a clean would remove, touching nothing.
pub fn plan(store: &Store, req: &Request) -> anyhow::Result<Plan> {
    let protected: BTreeSet<PathBuf> = store.protected_paths()?.into_iter().map(PathBuf::from).collect();
    let (mut items, busy) = aside_items(store, &protected)?;
    let in_aside: BTreeSet<&PathBuf> = items.iter().flat_map(|i| &i.remove).collect();
    let cleanable = store.cleanable(req.keep_top, req.older_than_days)?;
    let freed = store.stored_bytes_freed(&cleanable.iter().map(|c| &c.record).collect::<Vec<_>>())?;
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    let mut groups: BTreeMap<(String, CleanReason), Item> = BTreeMap::new();
    for Cleanable { record, owner, reason } in &cleanable {
        let item = groups.entry((owner.clone(), *reason)).or_insert_with(|| Item {
            what: owner.clone(),
            why: why(*reason, req),
            ..Item::default()
        });
        item.checkpoints += 1;
        if counted.insert(&record.sha256) {
            item.database_bytes += freed.get(&record.sha256).copied().unwrap_or(0);
        }
        let path = PathBuf::from(&record.path);
        if !in_aside.contains(&path) && holds(&path, &record.sha256) {
            item.files += 1;
            item.disk_bytes += record.size_bytes as u64;
            item.remove.push(path);
        }
    }
    items.extend(groups.into_values());
    let unused: u64 = freed.iter().filter(|(sha, _)| !counted.contains(sha.as_str())).map(|(_, n)| n).sum();
    if unused > 0 {
        items.push(Item {
            what: "checkpoint_files".into(),
            why: "stored weights no checkpoint uses".into(),
            database_bytes: unused,
            ..Item::default()
        });
    }
    let (free, _) = store.space()?;
    if free > 0 {
        items.push(Item {
            what: store.path().display().to_string(),
            why: "space deleted rows left (compaction)".into(),
            database_bytes: free,
            ..Item::default()
        });
    }
    Ok(Plan { items, busy, cleaning: cleanable.into_iter().map(|c| c.record).collect() })
}

/// Removes what `plan` found: first the record says which weights go (one transaction that also
/// deletes their stored bytes), then the files go, then the file is compacted, unless a worker is
/// running on it.
pub fn apply(store: &Store, req: &Request, plan: &Plan) -> anyhow::Result<Applied> {
    // The size the file had when the clean began: the cleanup's own writes and checkpoint may
    // grow or shrink it by a block before the compaction starts.
    let size_at_start = std::fs::metadata(store.path()).map(|m| m.len()).unwrap_or(0);
    let mut applied = Applied::default();
    if !plan.cleaning.is_empty() || plan.items.iter().any(|i| i.files > 0) {
        let cleanup = Cleanup {
            cleanup_id: crate::ids::new("cleanup"),
            keep_top: req.keep_top,
            older_than_days: req.older_than_days,
            n_folders: plan.items.iter().filter(|i| i.folder.is_some()).count(),
            disk_bytes: plan.disk_bytes(),
        };
        applied.database_bytes = store.record_cleanup(&cleanup, &plan.cleaning.iter().collect::<Vec<_>>())?;
        applied.cleanup_id = Some(cleanup.cleanup_id);
    }
    for item in &plan.items {
        for path in &item.remove {
            let size = std::fs::symlink_metadata(path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(path) {
                Ok(()) => {
                    applied.files_removed += 1;
                    applied.disk_bytes += size;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("note: could not remove {}: {e}", path.display()),
            }
            if item.folder.is_none() {
                if let Some(parent) = path.parent() {
                    crate::files::remove_empty_dirs(parent);
                }
            }
        }
        if let Some(folder) = &item.folder {
            crate::files::remove_empty_dirs(folder);
        }
    }
    let live: Vec<String> = store
        .running_workers()?
        .into_iter()
        .filter(|(w, age)| !crate::workers::is_gone(w, *age))
        .map(|(w, _)| w)
        .collect();
    if live.is_empty() {
        applied.compacted = Some((size_at_start, store.compact()?));
    } else {
        applied.not_compacted = Some(format!(
            "{} is in use by running workers ({}); run `hptune clean --apply` again when they finish to compact it",
            store.path().display(),
            live.into_iter().collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(applied)
}

/// Whether `path` holds the bytes recorded for it (a file changed since is not hptune's to remove).
fn holds(path: &Path, sha256: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
}

fn why(reason: CleanReason, req: &Request) -> String {
    match reason {
        CleanReason::Failed => "pruned or failed".into(),
        CleanReason::Old => format!("study older than {} days", req.older_than_days.unwrap_or(0)),
        CleanReason::OutsideTop => format!("outside the top {}", req.keep_top),
    }
}

/// The outputs this database moved aside (recorded when moved; never a folder merely found next
/// to one): each goes whole, except the checkpoint files something still uses, which stay where
/// the record says they are. Returns them, and those left alone because a process writes into
/// them.
fn aside_items(store: &Store, protected: &BTreeSet<PathBuf>) -> anyhow::Result<(Vec<Item>, Vec<PathBuf>)> {
    let mut items = Vec::new();
    let mut busy = Vec::new();
    for path in store.moved_aside_paths()?.into_iter().map(PathBuf::from) {
        if !path.exists() {
            continue;
        }
        if path.is_dir() && crate::files::claimed(&path) {
            busy.push(path);
            continue;
        }
        let files = crate::files::files_under(&path)?;
        let (kept, remove): (Vec<_>, Vec<_>) = files.into_iter().partition(|(f, _)| protected.contains(f));
        if remove.is_empty() {
            continue;
        }
        let why = match kept.len() {
            0 => "moved aside".to_string(),
            n => format!("moved aside; keeps the {n} checkpoint file(s) in use there"),
        };
        items.push(Item {
            what: shown(&path),
            why,
            files: remove.len(),
            disk_bytes: remove.iter().map(|(_, n)| n).sum(),
            remove: remove.into_iter().map(|(f, _)| f).collect(),
            folder: path.is_dir().then(|| path.clone()),
            ..Item::default()
        });
    }
    Ok((items, busy))
}

/// A path as people read it: relative to the working folder when under it.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().ok().and_then(|d| std::fs::canonicalize(d).ok());
    match cwd.as_deref().and_then(|d| path.strip_prefix(d).ok()) {
        Some(rel) => format!("./{}", rel.display()),
        None => path.display().to_string(),
    }
}
