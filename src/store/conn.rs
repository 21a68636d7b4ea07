//! This process's one connection to the database file, held in short leases.
//!
//! DuckDB lets one process hold a file read-write, and a read-only open fails while a writer holds
//! it. Opening costs 10-20 ms (and a close checkpoints), so opening once per statement made the
//! record slower than the training it records. Instead the process keeps its connection while it
//! is busy with the store and lets go of the file when:
//! - it has not used it for `IDLE` (a trial that trains for a while releases it at once), or
//! - it has held it for `LEASE` in one go; it then stays away for `YIELD`, so that a waiting
//!   `hptune query` or a second worker process gets its turn within about a second.
//!
//! DuckDB's file lock is a POSIX lock, which is held per process: two connections opened by two
//! threads of one process (`tune --jobs 2`) would not exclude each other and would corrupt the
//! file. Threads therefore take turns on the one connection here, and processes take turns
//! through DuckDB's lock.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use duckdb::{AccessMode, Config, Connection};

use super::StoreError;
use crate::costs;

/// A connection unused this long is closed.
pub const IDLE: Duration = Duration::from_millis(100);
/// A connection held this long in one go is closed after its current use.
pub const LEASE: Duration = Duration::from_millis(500);
/// After a lease ran out, this process leaves the file alone this long.
pub const YIELD: Duration = Duration::from_millis(50);
/// The longest pause between two attempts to open a held file (shorter than `YIELD`, so a
/// waiting process notices the holder's pause).
const POLL_MAX: Duration = Duration::from_millis(20);
/// How often a process that waits without a bound says what it waits for.
const SAY_EVERY: Duration = Duration::from_secs(10);

struct Held {
    path: PathBuf,
    conn: Connection,
    writable: bool,
    opened: Instant,
    last_used: Instant,
}

struct State {
    held: Option<Held>,
    /// The file this process has written to: its later reads open it read-write too, so that a
    /// worker does not pay a read-only open and then a read-write one in each cycle.
    written: Option<PathBuf>,
    /// No new open before this instant (the pause after a lease ran out).
    quiet_until: Option<Instant>,
}

static STATE: Mutex<State> = Mutex::new(State { held: None, written: None, quiet_until: None });
static REAPER: Once = Once::new();

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The process's connection, and its turn on it until dropped.
pub(crate) struct Conn {
    state: MutexGuard<'static, State>,
    taken: Instant,
}

impl Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.state.held.as_ref().expect("a lent connection is held").conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.state.held.as_mut().expect("a lent connection is held").conn
    }
}

impl Conn {
    /// Closes the connection now (its setup failed, so it must not be lent again).
    pub(crate) fn discard(mut self) {
        close(&mut self.state);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        costs::add(costs::Cost::StoreUse, self.taken.elapsed());
        let now = Instant::now();
        let expired = match self.state.held.as_mut() {
            Some(h) => {
                h.last_used = now;
                now.duration_since(h.opened) >= LEASE
            }
            None => false,
        };
        if expired {
            close(&mut self.state);
            // From when the file is free: the close checkpoints (tens of ms, more than the
            // pause), and a pause counted from before it left a waiting process no turn.
            self.state.quiet_until = Some(Instant::now() + YIELD);
        }
    }
}

fn close(state: &mut State) {
    if let Some(held) = state.held.take() {
        let started = Instant::now();
        drop(held.conn);
        costs::add(costs::Cost::StoreClose, started.elapsed());
    }
}

/// Closes the connection if this process holds one: call before the process exits.
pub fn release() {
    close(&mut state());
}

/// Who holds the file, from DuckDB's lock error: "PID N (command)" where the command is known.
fn holder(message: &str) -> String {
    let Some((_, rest)) = message.split_once("Conflicting lock is held in ") else { return message.to_string() };
    let rest = rest.split(". See").next().unwrap_or(rest);
    let pid =
        rest.split_once("(PID ").and_then(|(_, p)| p.split(')').next()).and_then(|p| p.trim().parse::<u32>().ok());
    let command = pid
        .and_then(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|raw| {
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(String::from_utf8_lossy).collect::<Vec<_>>().join(" ")
        })
        .filter(|c| !c.is_empty());
    match command.map(|c| super::server::redact_text(&c)) {
        Some(c) => format!("held by {rest}: {c}"),
        None => format!("held by {rest}"),
    }
}

/// Opens `path` with the record's settings.
pub(crate) fn open(path: &Path, writable: bool) -> duckdb::Result<Connection> {
    let mode = if writable { AccessMode::ReadWrite } else { AccessMode::ReadOnly };
    // One thread: the record's statements are a few rows each, and waking DuckDB's worker
    // threads for each cost more than it gave (measured: 1.5 -> 0.8 ms per update).
    // `hptune query` raises it for the user's SQL (`user_sql::sandbox`).
    let config = Config::default().access_mode(mode)?.threads(1)?;
    // The type named in the path: without it DuckDB reads the file's header to learn its type
    // before it takes the lock, and then opens with those bytes: a process that checkpointed in
    // between had freed the blocks they point to ("Could not read enough bytes from file" beside
    // four workers). Named, nothing is read before the lock, and a ':' in the path stays a path.
    let mut named = std::ffi::OsString::from("duckdb:");
    named.push(path);
    let conn = Connection::open_with_flags(named, config)?;
    if writable {
        // zstd off (a setting DuckDB 1.2 takes by SET only): it fetches one BLOB of a zstd block
        // by decompressing the block from its start, which made each checkpoint read cost up to
        // 0.2 s in a large file (migration 0019).
        conn.execute_batch("SET disabled_compression_methods = 'zstd'")?;
    }
    Ok(conn)
}

/// Lends the process's connection to `path`, opening it when needed: read-write when `writable`,
/// else read-only unless a read-write one is already open. Returns the connection and whether it
/// was opened now (so the caller checks the schema once per open). Waits for other processes'
/// locks up to `timeout`, or for as long as it takes when None, saying every `SAY_EVERY` who
/// holds the file.
pub(crate) fn acquire(path: &Path, writable: bool, timeout: Option<Duration>) -> Result<(Conn, bool), StoreError> {
    REAPER.call_once(|| {
        std::thread::Builder::new()
            .name("hptune-store-idle".into())
            .spawn(|| loop {
                std::thread::sleep(IDLE / 2);
                let mut st = state();
                if st.held.as_ref().is_some_and(|h| h.last_used.elapsed() >= IDLE) {
                    close(&mut st);
                }
            })
            .expect("can start a thread");
    });
    let mut st = state();
    let taken = Instant::now();
    let writable = writable || st.written.as_deref() == Some(path);
    if let Some(h) = &st.held {
        if h.path == path && (h.writable || !writable) {
            return Ok((Conn { state: st, taken }, false));
        }
        close(&mut st);
    }
    if let Some(until) = st.quiet_until.take() {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let start = Instant::now();
    let mut said = start;
    let mut delay = Duration::from_millis(2);
    loop {
        let attempt = Instant::now();
        match open(path, writable) {
            Ok(conn) => {
                costs::add(costs::Cost::StoreOpen, attempt.elapsed());
                let now = Instant::now();
                if writable {
                    st.written = Some(path.to_path_buf());
                }
                st.held = Some(Held { path: path.to_path_buf(), conn, writable, opened: now, last_used: now });
                return Ok((Conn { state: st, taken }, true));
            }
            Err(e) if e.to_string().contains("Could not set lock") => {
                let waited = start.elapsed();
                match timeout {
                    Some(limit) if waited >= limit => {
                        return Err(StoreError::Locked {
                            path: path.to_path_buf(),
                            waited: waited.as_secs_f64(),
                            detail: holder(&e.to_string()),
                        });
                    }
                    Some(limit) => std::thread::sleep(delay.min(limit - waited)),
                    None => {
                        if said.elapsed() >= SAY_EVERY {
                            eprintln!(
                                "waiting {:.0} s for {}: {}",
                                waited.as_secs_f64(),
                                path.display(),
                                holder(&e.to_string())
                            );
                            said = Instant::now();
                        }
                        std::thread::sleep(delay);
                    }
                }
                costs::add(costs::Cost::StoreWait, attempt.elapsed());
                delay = (delay * 2).min(POLL_MAX);
            }
            Err(e) => return Err(StoreError::Duckdb { path: path.to_path_buf(), source: e }),
        }
    }
}
