//! `hptune export`: write a stage's compatibility files again from the database, as the stage
//! wrote them. Checkpoint files that are gone are written back to their recorded paths.

use std::path::PathBuf;

use anyhow::Context;

use crate::checkpoint;
use crate::stages::export;
use crate::store::{CheckpointRecord, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Tune,
    Extend,
    Analyze,
    Train,
    Backtest,
}

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
    let stages = match args.stage {
        Some(s) => vec![s],
        None => vec![Stage::Tune, Stage::Extend, Stage::Analyze, Stage::Train, Stage::Backtest],
    };
    let mut wrote = 0;
    for stage in stages {
        let newest = |found: Option<String>, what: &str, command: &str| -> anyhow::Result<Option<String>> {
            match (&args.run, found) {
                (Some(id), _) => Ok(Some(id.clone())),
                (None, Some(id)) => Ok(Some(id)),
                (None, None) if args.stage.is_some() => {
                    anyhow::bail!("no {what} in {}: run `hptune {command}` first", store.path().display())
                }
                (None, None) => Ok(None),
            }
        };
        let (id, dir) = match stage {
            Stage::Tune => {
                let Some(study) = newest(store.latest_study()?, "study", "tune")? else { continue };
                let dir = args.to.join("hyperparameter_tuning_results");
                let mut records = Vec::new();
                for t in store.trials(&study)? {
                    if let Some(run) = &t.run_id {
                        records.extend(store.checkpoints(run)?);
                    }
                }
                restore(store, &records)?;
                export::tuning(store, &study, &dir)?;
                (study, dir)
            }
            Stage::Extend => {
                let Some(id) = newest(store.latest_extended_run(None)?, "extended run", "extend")? else { continue };
                let dir = args.to.join("extended_training_results");
                let mut records = Vec::new();
                for f in store.cv_folds(&id)? {
                    if let Some(c) = &f.checkpoint_id {
                        records.push(store.checkpoint(c)?);
                    }
                }
                restore(store, &records)?;
                export::extended(store, &id, &dir)?;
                (id, dir)
            }
            Stage::Analyze => {
                let found = store.selection(None)?.map(|s| s.selection_id);
                let Some(id) = newest(found, "selection", "analyze")? else { continue };
                export::analysis(store, &id, &args.to)?;
                (id, args.to.join("best_config.json"))
            }
            Stage::Train => {
                let Some(id) = newest(store.latest_finished_run("train")?, "final training run", "train")? else {
                    continue;
                };
                let dir = args.to.join("final_model");
                restore(store, &store.checkpoints(&id)?)?;
                export::final_model(store, &id, &dir)?;
                (id, dir)
            }
            Stage::Backtest => {
                let Some(id) = newest(store.latest_backtest()?, "backtest", "backtest")? else { continue };
                let dir = args.to.join("backtesting_results");
                export::backtest(store, &id, &dir).with_context(|| format!("exporting backtest {id}"))?;
                (id, dir)
            }
        };
        println!("{:?} {id}: wrote {}", stage, dir.display());
        wrote += 1;
    }
    if wrote == 0 {
        anyhow::bail!("nothing to export in {}: run a stage first", store.path().display());
    }
    Ok(())
}

/// Writes back the checkpoint files that are gone, from their recorded bytes.
fn restore(store: &Store, records: &[CheckpointRecord]) -> anyhow::Result<()> {
    for r in records {
        let path = std::path::Path::new(&r.path);
        if !path.exists() {
            checkpoint::restore(store, r, path)?;
        }
    }
    Ok(())
}
