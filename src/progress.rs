//! Progress on standard error: a redrawn bar on a terminal, plain log lines with a UTC timestamp
//! otherwise (a log file, CI, `--verbose`), and nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static QUIET: AtomicBool = AtomicBool::new(false);
static LINES: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no progress at all; `--verbose`: log lines also on a terminal.
pub fn set_mode(quiet: bool, verbose: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    LINES.store(verbose, Ordering::Relaxed);
}

pub struct Progress {
    label: String,
    total: usize,
    started: Instant,
    tty: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: usize) -> Self {
        let tty = std::io::stderr().is_terminal() && !LINES.load(Ordering::Relaxed);
        Self { label: label.into(), total, started: Instant::now(), tty }
    }

    /// Reports step `done` of `total` with a short status text.
    pub fn step(&self, done: usize, status: &str) {
        if QUIET.load(Ordering::Relaxed) {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if done > 0 { elapsed / done as f64 * (self.total.saturating_sub(done)) as f64 } else { 0.0 };
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 24;
            let filled = (done * width) / self.total.max(1);
            let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
            let _ = write!(err, "\r\x1b[2K{} [{bar}] {done}/{} {status} ETA {}", self.label, self.total, clock(eta));
        } else {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            let _ = writeln!(err, "{now} {} {done}/{} {status} ({} elapsed)", self.label, self.total, clock(elapsed));
        }
    }

    pub fn finish(&self) {
        if self.tty && !QUIET.load(Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
