//! `hptune pull`: copy a study server's studies into the database.

use std::path::PathBuf;

use crate::stages::pull::{self, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study server (postgresql://USER[:PASSWORD]@HOST[:PORT]/DB).
    #[arg(long, env = "HPTUNE_STORAGE", value_parser = super::StorageUrl)]
    pub storage: String,
    /// The study to pull (default: every study hptune created on the server).
    #[arg(long)]
    pub study: Option<String>,
    /// Tuning folder: the pulled checkpoints are written under it, and each study's files exported.
    #[arg(long, default_value = crate::layout::TUNING_DIR)]
    pub out: PathBuf,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database_folder(&args.out, store.path(), "--out")?;
    let pulled = pull::run(store, &Request { storage: args.storage, study: args.study, out_dir: args.out.clone() })?;
    for p in &pulled {
        println!(
            "study {}: {} trials added, {} finished trials here, {} still running on the server{}",
            p.study,
            p.added,
            p.finished,
            p.running,
            if p.running > 0 { " (pull again when they finish)" } else { "" }
        );
    }
    if let Some(last) = pulled.last() {
        println!("wrote {}/; next: hptune extend --study {}", args.out.display(), last.study);
    }
    Ok(())
}
