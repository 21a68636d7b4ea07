//! Who is working: the name a process records on the trials and runs it works on, and how another
//! process judges that it died. A process of this machine is judged by the process itself (its
//! PID and start time), never by a heartbeat it may have been unable to write (a reader holding
//! the file past the grace blocks every write); a process elsewhere by a stale heartbeat, as
//! Optuna's heartbeat does.

/// A worker whose heartbeat is older than this is judged dead (workers renew theirs every
/// `HEARTBEAT_EVERY_S`), as Optuna's heartbeat grace period does.
pub const STALE_HEARTBEAT_S: f64 = 120.0;
/// How often a working process renews the heartbeat of what it works on.
pub const HEARTBEAT_EVERY_S: u64 = 20;

/// This process as a worker: `host:pid:pid-namespace:start`, `start` its start time in clock
/// ticks after boot (so that a later process with the same PID is told apart).
pub fn name() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}:{}", host(), pid_namespace(), start_time(pid).unwrap_or(0))
}

/// A process's start time, in clock ticks after boot (field 22 of `/proc/PID/stat`); None when
/// there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

pub(crate) fn host() -> String {
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

/// Whether `worker`, whose heartbeat is `heartbeat_age_s` old, is gone. A process of this
/// machine's PID namespace is gone when no process has its PID, when the one that has it started
/// at another time (the PID was reused), or when it is this process (which asks before it starts
/// any work); while it lives it is never gone, however old its heartbeat. A worker named without
/// a start time (an older hptune) whose PID lives, or a worker elsewhere, is gone when its
/// heartbeat is stale.
pub fn is_gone(worker: &str, heartbeat_age_s: f64) -> bool {
    let stale = heartbeat_age_s > STALE_HEARTBEAT_S;
    let parts: Vec<&str> = worker.split(':').collect();
    let (h, pid, ns, start) = match parts.as_slice() {
        [h, pid, ns] => (*h, *pid, *ns, None),
        [h, pid, ns, start] => (*h, *pid, *ns, start.parse::<u64>().ok()),
        _ => return stale,
    };
    if h != host() || ns != pid_namespace() {
        return stale;
    }
    let Ok(pid) = pid.parse::<u32>() else { return stale };
    if pid == std::process::id() {
        return true;
    }
    match (start_time(pid), start) {
        (None, _) => true,
        (Some(now), Some(then)) => now != then,
        (Some(_), None) => stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_never_gone_and_a_reused_pid_is() {
        // This test's parent (cargo's runner, or a shell) lives for as long as the test does.
        let parent = std::os::unix::process::parent_id();
        let start = start_time(parent).unwrap();
        let me = |pid: u32, start: u64| format!("{}:{pid}:{}:{start}", host(), pid_namespace());
        assert!(!is_gone(&me(parent, start), 1e9), "a live process with an old heartbeat");
        assert!(is_gone(&me(parent, start + 1), 0.0), "a reused PID");
        assert!(is_gone(&me(std::process::id(), start_time(std::process::id()).unwrap()), 0.0), "this process");
        assert!(is_gone(&me(u32::MAX - 1, 5), 0.0), "no such process");
        // Elsewhere, and the older name without a start time: the heartbeat decides.
        assert!(!is_gone("elsewhere:1:1:1", 10.0) && is_gone("elsewhere:1:1:1", 1e9));
        let old = format!("{}:{parent}:{}", host(), pid_namespace());
        assert!(!is_gone(&old, 10.0) && is_gone(&old, 1e9));
        assert_eq!(name().split(':').count(), 4);
    }
}
