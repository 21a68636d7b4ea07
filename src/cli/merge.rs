//! `hptune merge OTHER.db`: another experiments database copied into this one.

use std::path::PathBuf;

use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database to copy from (read only; never changed).
    pub other: PathBuf,
    /// List what would be copied, and copy nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    let merged = store.merge(&args.other, args.dry_run)?;
    let total: u64 = merged.rows.iter().map(|r| r.1).sum();
    let verb = if args.dry_run { "would copy" } else { "copied" };
    println!(
        "{} (schema {}) into {}: {verb} {total} rows in {} tables; {} of its datasets are here already (same content)",
        args.other.display(),
        merged.other_version,
        store.path().display(),
        merged.rows.len(),
        merged.datasets_present
    );
    for (table, n) in &merged.rows {
        println!("  {table}: {n}");
    }
    if total == 0 {
        println!("nothing new: every row of {} is here already", args.other.display());
    }
    Ok(())
}
