//! Identifiers: one format and one clock (UTC) for every id hptune makes, the shapes of the run
//! ids derived from them, and content ids (sha256 in hex).

use sha2::{Digest, Sha256};

/// A new id of `kind`, from the time in UTC to the millisecond: `train-20261130-153700.123`.
/// Sorts by time as text.
pub fn new(kind: &str) -> String {
    format!("{kind}-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f"))
}

/// This process, for its provenance: the time it asked, to the millisecond, and its PID
/// (`process-20261130-153700.123-4711`), so that two processes never share one.
pub fn process() -> String {
    format!("{}-{}", new("process"), std::process::id())
}

/// The suffix of a folder moved aside: the time in UTC to the second.
pub fn aside_stamp() -> String {
    chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string()
}

/// The training run of a study's trial.
pub fn trial_run(study: &str, number: usize) -> String {
    format!("{study}/trial-{number}")
}

/// The outcome series of a study's baseline.
pub fn baseline(study: &str, name: &str) -> String {
    format!("baseline:{study}:{name}")
}

/// The training run of a configuration's fold in an extended run; a retried fold's later attempts
/// (`attempt` from 2) get their own.
pub fn fold_run(extended_run_id: &str, rank: usize, fold: usize, attempt: usize) -> String {
    let base = format!("{extended_run_id}/config-{rank}/fold-{fold}");
    if attempt <= 1 {
        base
    } else {
        format!("{base}/attempt-{attempt}")
    }
}

/// The sha256 of `bytes` in lowercase hex: the id of a content (a checkpoint file, a migration).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A digest in lowercase hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
