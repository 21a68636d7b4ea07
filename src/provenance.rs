//! Where a run came from: the hptune build (version and the commit it was built from), the
//! command line, the machine (host, CPU model), the kernel path and threads the numeric code runs
//! with, and the device. One per process; the store records it once and every study, training
//! run, extended run, selection and backtest the process writes points at it.

use std::sync::OnceLock;

/// The commit this binary was built from (`build.rs`): 40 hex digits, `-dirty` after them when
/// tracked files differed from it, or `unknown`.
pub const COMMIT: &str = env!("HPTUNE_COMMIT");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `ids::process()`: this process, from its start time and PID.
    pub id: String,
    pub version: &'static str,
    pub commit: &'static str,
    /// The arguments, shell-quoted where needed, with any storage URL's password replaced.
    pub command_line: String,
    pub host: String,
    pub cpu_model: String,
    /// avx512, avx2 or baseline (`model::cpu`).
    pub kernel_path: &'static str,
    /// Rayon's threads.
    pub threads: usize,
    /// cpu or cuda: the `--device` of the command, cpu for one without.
    pub device: String,
}

static DEVICE: OnceLock<String> = OnceLock::new();
static CURRENT: OnceLock<Provenance> = OnceLock::new();

/// Records the command's `--device` before anything is written (the first value holds).
pub fn set_device(device: &str) {
    let _ = DEVICE.set(device.to_string());
}

/// This process's provenance.
pub fn current() -> &'static Provenance {
    CURRENT.get_or_init(|| Provenance {
        id: crate::ids::process(),
        version: crate::VERSION,
        commit: COMMIT,
        command_line: crate::store::server::redact_text(&command_line(std::env::args())),
        host: crate::workers::host(),
        cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
        kernel_path: crate::model::cpu().name(),
        threads: rayon::current_num_threads(),
        device: DEVICE.get().cloned().unwrap_or_else(|| "cpu".into()),
    })
}

/// Arguments joined by spaces, each quoted as a POSIX shell would need it.
fn command_line(args: impl Iterator<Item = String>) -> String {
    let quote = |a: String| {
        let plain = !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
        if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    args.map(quote).collect::<Vec<_>>().join(" ")
}

/// The first `model name` of /proc/cpuinfo.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_quotes_what_a_shell_would_split() {
        let args = ["hptune", "query", "SELECT 1", "--db", "it's.db", "--format=csv"].map(String::from);
        assert_eq!(command_line(args.into_iter()), r"hptune query 'SELECT 1' --db 'it'\''s.db' --format=csv");
    }
}
