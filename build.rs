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
            // Without optional locks: a plain `git status` rewrites the index to refresh its
            // stat data, which changed the index this script watches, so the next cargo command
            // ran it again and recompiled hptune (a minute each time).
            let dirty = git(&["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
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
    // Only files that exist: cargo counts a missing one as changed, and reran this script and
    // recompiled hptune on every command (a checkout without `packed-refs`). A branch whose loose
    // ref is missing is in `packed-refs`, which then exists.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "index", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(p) = git(&["rev-parse", "--git-path", path]).filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    for tracked in ["src", "sql", "migrations", "benches", "tests", "Cargo.toml", "Cargo.lock", "README.md"] {
        println!("cargo:rerun-if-changed={tracked}");
    }
}
