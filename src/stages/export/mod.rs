//! Compatibility files, written from database rows: every stage's folder can always be written
//! again, complete (checkpoints included), under any folder. One file per stage; the
//! `hptune export` driver is here.

mod analysis;
mod backtest;
mod extended;
mod final_model;
mod tuning;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use analysis::analysis;
pub use backtest::backtest;
pub use extended::extended;
pub use final_model::final_model;
pub use tuning::tuning;

/// The charts the exports write as PNG, which the report draws as SVG.
pub(crate) use analysis::{fold_scores_chart, tuning_vs_cv_chart};
pub(crate) use backtest::equity_chart;
pub(crate) use final_model::curves_chart;
pub(crate) use tuning::{history_chart, slices_chart};

/// Where a tuning or extended folder names its run, for resuming into it.
pub use extended::OWNER as EXTENDED_OWNER;
pub use tuning::OWNER as TUNING_OWNER;

use crate::checkpoint;
use crate::files::write_atomic;
use crate::layout;
use crate::store::{CheckpointRecord, Store};

/// A stage whose files `hptune export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Tune,
    Extend,
    Analyze,
    Train,
    Backtest,
}

impl Stage {
    pub const ALL: [Stage; 5] = [Stage::Tune, Stage::Extend, Stage::Analyze, Stage::Train, Stage::Backtest];

    /// What a run of this stage is called, and the command that makes one.
    fn what(self) -> (&'static str, &'static str) {
        match self {
            Stage::Tune => ("study", "tune"),
            Stage::Extend => ("extended run", "extend"),
            Stage::Analyze => ("selection", "analyze"),
            Stage::Train => ("final training run", "train"),
            Stage::Backtest => ("backtest", "backtest"),
        }
    }

    /// The newest run of this stage, if any.
    fn newest(self, store: &Store) -> anyhow::Result<Option<String>> {
        Ok(match self {
            Stage::Tune => store.latest_study()?,
            Stage::Extend => store.latest_extended_run(None)?,
            Stage::Analyze => store.selection(None)?.map(|s| s.selection_id),
            Stage::Train => store.latest_finished_run("train")?,
            Stage::Backtest => store.latest_backtest()?,
        })
    }
}

/// What `export_run` wrote.
pub struct Exported {
    pub id: String,
    /// The folder (or, for an analysis, the file) written.
    pub path: PathBuf,
    pub moved_aside: Vec<PathBuf>,
}

/// Writes the files of a stage's run (`id`, default its newest) under `to`, as the stage does: an
/// existing folder of another run is moved aside first; one of the same run is written again in
/// place. `Ok(None)` when the stage has no run and none was asked for.
pub fn export_run(store: &Store, stage: Stage, id: Option<&str>, to: &Path) -> anyhow::Result<Option<Exported>> {
    let id = match id {
        Some(id) => id.to_string(),
        None => match stage.newest(store)? {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    type Writer = fn(&Store, &str, &Path) -> anyhow::Result<()>;
    let (folder, owner, write): (&str, (&str, &str), Writer) = match stage {
        Stage::Tune => (layout::TUNING_DIR, tuning::OWNER, tuning),
        Stage::Extend => (layout::EXTENDED_DIR, extended::OWNER, extended),
        Stage::Train => (layout::FINAL_DIR, final_model::OWNER, final_model),
        Stage::Backtest => (layout::BACKTEST_DIR, backtest::OWNER, backtest),
        Stage::Analyze => return export_analysis(store, id, to).map(Some),
    };
    let dir = to.join(folder);
    let moved_aside = super::set_aside_unless_owned(store, &dir, owner, &id)?.into_iter().collect();
    let _claim = crate::files::claim(&dir)?;
    write(store, &id, &dir).with_context(|| format!("exporting {} {id}", stage.what().0))?;
    Ok(Some(Exported { id, path: dir, moved_aside }))
}

/// An analysis writes two names into `to` itself (`best_config.json`, `analysis_plots/`): both are
/// moved aside when `best_config.json` belongs to another selection.
fn export_analysis(store: &Store, id: String, to: &Path) -> anyhow::Result<Exported> {
    store.selection(Some(&id))?.with_context(|| no_run(store, Stage::Analyze, &id))?;
    let mut moved_aside = Vec::new();
    let (file, pointer) = analysis::OWNER;
    if super::owner_of(&to.join(file), pointer).is_some_and(|other| other != id) {
        for name in [layout::BEST_CONFIG, layout::ANALYSIS_PLOTS] {
            moved_aside.extend(super::set_aside(store, &to.join(name))?);
        }
    }
    analysis(store, &id, to)?;
    Ok(Exported { path: to.join(layout::BEST_CONFIG), id, moved_aside })
}

/// The error for a run id that names nothing.
fn no_run(store: &Store, stage: Stage, id: &str) -> String {
    let (what, command) = stage.what();
    format!(
        "no {what} {id} in {}: `hptune query pipeline_history` lists them, or run `hptune {command}`",
        store.path().display()
    )
}

/// The error for a stage with no run at all.
pub fn nothing_to_export(store: &Store, stage: Stage) -> String {
    let (what, command) = stage.what();
    format!("no {what} in {}: run `hptune {command}` first", store.path().display())
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    write_atomic(path, text.as_bytes())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Puts a recorded checkpoint at `dir/model.safetensors` (from the database's bytes when the file
/// is missing or differs) and returns its JSON entry: where it is and its sha256. A checkpoint
/// whose weights `hptune clean` removed gets no file, and its entry says which cleanup took them.
fn place_checkpoint(store: &Store, record: &CheckpointRecord, dir: &Path) -> anyhow::Result<serde_json::Value> {
    Ok(place_checkpoints(store, &[(record, dir.to_path_buf())])?.remove(0))
}

/// [`place_checkpoint`] for many, with one read of the database for all their bytes.
fn place_checkpoints(store: &Store, places: &[(&CheckpointRecord, PathBuf)]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut entries = Vec::with_capacity(places.len());
    let mut wanted = Vec::new();
    for (record, dir) in places {
        if let Some(cleanup) = &record.cleanup_id {
            entries.push(serde_json::json!({"path": null, "sha256": record.sha256, "cleaned_by": cleanup}));
            continue;
        }
        create_dir(dir)?;
        let file = std::fs::canonicalize(dir)?.join(checkpoint::FILE);
        entries.push(serde_json::json!({"path": file.to_string_lossy(), "sha256": record.sha256}));
        wanted.push((*record, file));
    }
    checkpoint::ensure_all(store, &wanted)?;
    Ok(entries)
}

/// Mean and sample standard deviation of fold scores (0 for a single fold); none for no folds.
fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let std = if values.len() > 1 { crate::stats::sample_std(values) } else { 0.0 };
    (Some(crate::stats::mean(values)), Some(std))
}
