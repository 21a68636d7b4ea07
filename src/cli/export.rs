//! `hptune export`: write a stage's files again from the database, complete (checkpoints
//! included), under a folder, as the stage wrote them.

use std::path::PathBuf;

use crate::stages::export::{self, Stage};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage to export (default: all five, each its newest run).
    #[arg(value_enum)]
    pub stage: Option<Stage>,
    /// Which run: a study name (tune), extended run id, selection id (analyze), training run id
    /// (train) or backtest id. Default: the newest.
    #[arg(long, requires = "stage")]
    pub run: Option<String>,
    /// Folder to write under, as the stages do.
    #[arg(long, default_value = ".")]
    pub to: PathBuf,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database(&args.to, store.path(), "--to")?;
    let stages = match args.stage {
        Some(s) => vec![s],
        None => Stage::ALL.to_vec(),
    };
    let mut wrote = 0;
    for stage in stages {
        let Some(done) = export::export_run(store, stage, args.run.as_deref(), &args.to)? else {
            if args.stage.is_some() {
                anyhow::bail!(export::nothing_to_export(store, stage));
            }
            continue;
        };
        for moved in &done.moved_aside {
            eprintln!("kept another run's files as {}", moved.display());
        }
        println!("{:?} {}: wrote {}", stage, done.id, done.path.display());
        wrote += 1;
    }
    if wrote == 0 {
        anyhow::bail!("nothing to export in {}: run a stage first", store.path().display());
    }
    Ok(())
}
