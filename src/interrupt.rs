//! Ctrl-C and `kill`: SIGINT and SIGTERM set a flag that training checks between batches, so the
//! running trials, folds and training runs are recorded as failed with reason `interrupted`
//! before the process exits with 130 or 143 (128 + the signal), as shells expect. A second signal
//! ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The reason recorded for work that an interruption stopped.
pub const REASON: &str = "interrupted";

extern "C" fn on_signal(signal: libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Routes SIGINT and SIGTERM to the flag. For commands that check it (the training stages);
/// the others keep the default, which ends them at once (DuckDB's log keeps every commit).
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic (and calls _exit).
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The error that stops work after a signal.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("interrupted by {}: finished work is recorded; run the same command again to continue", name(*.0))]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// The exit status: 128 + the signal (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> u8 {
        (128 + self.0) as u8
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// `HPTUNE_PAUSE_FILE=PATH`: while PATH exists, training waits at the end of each epoch (its
/// heartbeats go on, Ctrl-C and `kill` still stop it), and goes on when the file is removed. It
/// frees the CPU for a while without losing a run, and lets a test interrupt a trial at a state
/// instead of at a moment, whatever the machine's speed.
pub const PAUSE_FILE_ENV: &str = "HPTUNE_PAUSE_FILE";

/// `HPTUNE_INJECT=WHAT`: a fault or delay the tests inject on purpose (`lost-claim-ack`: a study
/// server claim loses its acknowledgement; `slow-sampler`: every suggestion takes 300 ms more).
pub fn injected(what: &str) -> bool {
    std::env::var("HPTUNE_INJECT").is_ok_and(|v| v == what)
}

/// Waits while the pause file exists; Err once a signal has arrived.
pub fn wait_while_paused() -> Result<(), Interrupted> {
    if let Some(path) = std::env::var_os(PAUSE_FILE_ENV).filter(|p| !p.is_empty()) {
        let path = std::path::Path::new(&path);
        while path.exists() {
            check()?;
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    check()
}

/// Err once a signal has arrived.
pub fn check() -> Result<(), Interrupted> {
    received().map_or(Ok(()), |s| Err(Interrupted(s)))
}

/// Whether an error (or one of its causes) is an interruption.
pub fn is_interrupted(e: &anyhow::Error) -> Option<Interrupted> {
    e.chain().find_map(|c| c.downcast_ref::<Interrupted>().copied())
}

/// The reason to record for work that stopped with `e`.
pub fn reason(e: &anyhow::Error) -> String {
    match is_interrupted(e) {
        Some(_) => REASON.to_string(),
        None => format!("{e:#}"),
    }
}
