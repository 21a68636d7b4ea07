//! Where a process's time goes outside training: counters and timers, cheap enough to be always
//! on (two atomic adds per event). `hptune --verbose ...` prints them when the command ends;
//! `benches/store_overhead.py` reads that to report the cost of a trial outside training.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Opening the database file (a successful open).
    StoreOpen,
    /// Attempts to open a file another process held, and the pauses between them.
    StoreWait,
    /// Holding the process's connection for one store call (statements, and the sampler while a
    /// trial is claimed).
    StoreUse,
    /// Closing the database file (DuckDB checkpoints its WAL then).
    StoreClose,
    /// Appending per-date outcomes (inside a store call's transaction, so also in StoreUse).
    Outcomes,
    /// Suggesting a trial's parameters.
    Sampler,
    /// Computing features and building samples.
    Features,
    /// Training epochs (forward, backward, validation).
    Training,
    /// Writing checkpoint files.
    Checkpoint,
    /// Writing the stage's exports.
    Export,
    /// A study server's calls (each a short transaction, or a read).
    ServerCall,
    /// Waiting for a study server's study row lock, which every writer of a new trial takes.
    ServerLockWait,
}

const ALL: [(Cost, &str); 12] = [
    (Cost::StoreOpen, "store: open"),
    (Cost::StoreWait, "store: wait for another process"),
    (Cost::StoreUse, "store: calls (incl. sampler in claims)"),
    (Cost::StoreClose, "store: close (checkpoint)"),
    (Cost::Outcomes, "store: per-date outcomes (part of calls)"),
    (Cost::Sampler, "sampler"),
    (Cost::Features, "features and samples"),
    (Cost::Training, "training epochs"),
    (Cost::Checkpoint, "checkpoint files"),
    (Cost::Export, "exports"),
    (Cost::ServerCall, "study server: calls"),
    (Cost::ServerLockWait, "study server: wait for the study lock"),
];

static NANOS: [AtomicU64; ALL.len()] = [const { AtomicU64::new(0) }; ALL.len()];
static COUNTS: [AtomicU64; ALL.len()] = [const { AtomicU64::new(0) }; ALL.len()];
static LONGEST: [AtomicU64; ALL.len()] = [const { AtomicU64::new(0) }; ALL.len()];

fn index(cost: Cost) -> usize {
    ALL.iter().position(|(c, _)| *c == cost).expect("every cost is listed")
}

/// Adds one event of `cost` that took `d`.
pub fn add(cost: Cost, d: Duration) {
    let i = index(cost);
    NANOS[i].fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
    LONGEST[i].fetch_max(d.as_nanos() as u64, Ordering::Relaxed);
}

/// Runs `f`, counting its time as `cost`.
pub fn time<T>(cost: Cost, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    add(cost, started.elapsed());
    out
}

/// Every counter: (name, events, seconds, longest event in seconds).
pub fn snapshot() -> Vec<(&'static str, u64, f64, f64)> {
    let secs = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 * 1e-9;
    ALL.iter()
        .enumerate()
        .map(|(i, (_, name))| (*name, COUNTS[i].load(Ordering::Relaxed), secs(&NANOS[i]), secs(&LONGEST[i])))
        .collect()
}

/// The counters as lines `costs: NAME: N events, S s, longest L s`, for standard error.
pub fn report() -> String {
    snapshot()
        .into_iter()
        .filter(|(_, n, _, _)| *n > 0)
        .map(|(name, n, s, longest)| format!("costs: {name}: {n} events, {s:.4} s, longest {longest:.4} s\n"))
        .collect()
}
