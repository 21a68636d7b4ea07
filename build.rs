//! Embeds the commit hptune is built from as `HPTUNE_COMMIT`: the HEAD commit, with `-dirty` when
//! tracked files differ from it, or `unknown` outside a git checkout (a crate's source package).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{head}-dirty")
            } else {
                head
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=HPTUNE_COMMIT={commit}");
    // Again when HEAD moves (a commit, a checkout) or a tracked file changes.
    for path in ["HEAD", "index", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &branch]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    for tracked in ["src", "sql", "migrations", "benches", "tests", "Cargo.toml", "Cargo.lock", "README.md"] {
        println!("cargo:rerun-if-changed={tracked}");
    }
}
