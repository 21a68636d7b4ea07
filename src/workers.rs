//! Who is working: the name a process records on the trials and runs it works on, and how another
//! process judges that it died (a stale heartbeat, as Optuna's heartbeat does, with the local PID
//! check as a shortcut).

/// A worker whose heartbeat is older than this is judged dead (workers renew theirs every
/// `HEARTBEAT_EVERY_S`), as Optuna's heartbeat grace period does.
pub const STALE_HEARTBEAT_S: f64 = 120.0;
/// How often a working process renews the heartbeat of what it works on.
pub const HEARTBEAT_EVERY_S: u64 = 20;

/// This process as a worker: `host:pid:pid-namespace`.
pub fn name() -> String {
    format!("{}:{}:{}", host(), std::process::id(), pid_namespace())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|l| l.to_string_lossy().trim_start_matches("pid:[").strip_suffix(']').map(str::to_string))
        .unwrap_or_else(|| "0".into())
}

/// Whether `worker`, whose heartbeat is `heartbeat_age_s` old, is gone: its heartbeat is stale, or,
/// as a shortcut, it is a process of this machine's PID namespace that no longer exists (or is
/// this process, which asks before it starts any work). PID reuse cannot keep a dead worker alive:
/// its heartbeat still goes stale.
pub fn is_gone(worker: &str, heartbeat_age_s: f64) -> bool {
    if heartbeat_age_s > STALE_HEARTBEAT_S {
        return true;
    }
    let mut parts = worker.rsplitn(3, ':');
    let (Some(ns), Some(pid), Some(h)) = (parts.next(), parts.next(), parts.next()) else { return false };
    if h != host() || ns != pid_namespace() {
        return false;
    }
    let pid: u32 = pid.parse().unwrap_or(0);
    pid == std::process::id() || !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
