//! Files: whole-or-nothing writes and moving folders aside. The leaf every writer uses (stages,
//! checkpoints, the store's CSV copies); it depends on nothing of hptune but the id clock.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes a file whole or not at all: a temporary file beside it, flushed to disk, renamed into
/// place. Two processes exporting the same study never leave a mixed file, and a crash never
/// leaves a half-written one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Created with mode 0666 less the umask, as a plain create would be (tempfile's own 0600 would
    // make exports unreadable to others).
    let mut tmp = tempfile::Builder::new()
        .prefix(".hptune-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Refuses an output file that is the database or its write-ahead log (by path, through links,
/// or as another name of the same file), before anything is opened: writing it would destroy the
/// record. `flag` names the option for the message.
pub fn refuse_database(out: &Path, db: &Path, flag: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The absolute path with links resolved, for a file that may not exist yet.
    let resolve = |p: &Path| -> Option<PathBuf> {
        std::fs::canonicalize(p).ok().or_else(|| {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
        })
    };
    let identity = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    for target in [db.to_path_buf(), wal_path(db)] {
        let same_path = resolve(out).is_some_and(|o| Some(o) == resolve(&target));
        let same_file = identity(out).is_some_and(|o| Some(o) == identity(&target));
        if same_path || same_file {
            anyhow::bail!(
                "{flag} {} is the database file {} (or its log): writing it would destroy the record; choose another file",
                out.display(),
                target.display()
            );
        }
    }
    Ok(())
}

/// Refuses an output folder that a run moves aside as a whole (a stage's `--out`) when it is the
/// database or holds it: the database would move with it.
pub fn refuse_database_folder(dir: &Path, db: &Path, flag: &str) -> anyhow::Result<()> {
    refuse_database(dir, db, flag)?;
    let (Ok(dir), Ok(db_abs)) = (std::fs::canonicalize(dir), std::fs::canonicalize(db)) else { return Ok(()) };
    if db_abs.starts_with(&dir) {
        anyhow::bail!(
            "{flag} {} holds the database {}: a new run moves that folder aside, and the database with it; \
             choose another folder",
            dir.display(),
            db.display()
        );
    }
    Ok(())
}

/// Refuses an output folder that cannot be written: a file is created and removed in it (or in its
/// nearest existing parent), so that a stage stops before it records anything.
pub fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let existing = dir.ancestors().find(|p| p.is_dir()).unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".hptune-probe-")
        .tempfile_in(existing)
        .map(drop)
        .with_context(|| format!("cannot write under {}: choose another --out", dir.display()))
}

/// DuckDB's write-ahead log beside the database file `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push(".wal");
    PathBuf::from(wal)
}

/// A temporary name beside `path`, unique to this process, for writers that need a path (DuckDB's
/// COPY, SQLite) before the file is renamed into place.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// The lock file a writing process holds in an output folder.
const CLAIM_FILE: &str = ".hptune.lock";

/// A process's claim on an output folder it writes into: a shared lock on `DIR/.hptune.lock`,
/// held until dropped or the process ends (also by `kill -9`). Any number of processes may
/// claim one folder (workers of one study); while one does, no other moves it aside.
pub struct Claim(#[allow(dead_code)] std::fs::File);

/// Claims `dir` (created if needed) for writing.
pub fn claim(dir: &Path) -> anyhow::Result<Claim> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(CLAIM_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.lock_shared().with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(Claim(file))
}

/// Whether a process claims `dir`: its lock file cannot be locked exclusively right now. (This
/// process's own claims count too: it never moves a folder it writes into.)
pub fn claimed(dir: &Path) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(CLAIM_FILE)) else { return false };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// Every file under `path` (or `path` itself when it is a file) with its size; links are counted
/// as themselves, never followed.
pub fn files_under(path: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        out.extend(files_under(&entry.path())?);
    }
    Ok(out)
}

/// Removes the empty folders under `dir`, and `dir` itself when it ends up empty.
pub fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Moves an existing output folder aside (`NAME.YYYYmmdd-HHMMSS`) so that nothing is overwritten;
/// returns where it went. A folder a process claims is refused (`ErrorKind::ResourceBusy`).
pub fn move_aside(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    if !dir.exists() {
        return Ok(None);
    }
    if claimed(dir) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ResourceBusy,
            format!("{} is being written by a running hptune process", dir.display()),
        ));
    }
    let stamp = crate::ids::aside_stamp();
    let mut target = PathBuf::from(format!("{}.{stamp}", dir.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.{stamp}-{n}", dir.display()));
        n += 1;
    }
    std::fs::rename(dir, &target)?;
    Ok(Some(target))
}
