//! Stage 3, analysis: the `best_config` view picks a configuration from an extended run; the
//! selection is recorded with its rule and sources, and exported as `best_config.json` with
//! `analysis_plots/`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::json;

use crate::states::RunStatus;
use crate::store::{BestConfig, Selection, Store};

#[derive(Debug, Clone)]
pub struct Request {
    /// The extended run to analyse (default: the newest).
    pub extended_run: Option<String>,
    /// Folder for best_config.json and analysis_plots/.
    pub out_dir: PathBuf,
    /// CSCV's blocks for the probability of backtest overfitting (even).
    pub pbo_blocks: usize,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub selection: Selection,
    pub best: BestConfig,
    /// The study's best against its baselines and against chance.
    pub verdict: super::verdict::Verdict,
    pub moved_aside: Vec<PathBuf>,
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    let id = match &req.extended_run {
        Some(id) => id.clone(),
        None => store.latest_extended_run(None)?.with_context(|| {
            format!("no extended training run in {}: run `hptune extend` first", store.path().display())
        })?,
    };
    let run = store.extended_run(&id)?;
    if run.status != RunStatus::Finished {
        bail!(
            "extended run {id} in {} is {}, not finished: run `hptune extend --resume {id}` first",
            store.path().display(),
            run.status
        );
    }
    let best = store.best_config(&id)?.with_context(|| format!("the best_config view selects nothing for {id}"))?;
    let dataset = store
        .dataset_by_id(&run.dataset_id)?
        .with_context(|| format!("dataset {} is no longer in {}", run.dataset_id, store.path().display()))?;
    let verdict = super::verdict::study(store, &best.study_name, req.pbo_blocks)?;
    let selection_id = crate::ids::new("selection");
    let config: serde_json::Value = serde_json::from_str(&best.config_json)?;
    let mut metrics = json!({
        "score": best.score,
        "cv_mean_accuracy": best.cv_mean,
        "cv_std_accuracy": best.cv_std,
        "cv_worst_accuracy": best.cv_worst,
        "tuning_value": best.tuning_value,
        "accuracy_improvement": best.improvement,
        "folds": best.folds,
    });
    if let Some(p) = best.paths {
        metrics["cpcv_paths"] = json!(p.paths);
        metrics["path_mean_accuracy"] = json!(p.mean);
        metrics["path_std_accuracy"] = json!(p.std);
        metrics["path_worst_accuracy"] = json!(p.worst);
    }
    metrics["validity"] = verdict.to_json();
    let file = json!({
        "config": config,
        "selection": {
            "selection_id": selection_id,
            "rule": match best.paths {
                Some(_) => "best_config view: highest cpcv path mean - path std (ties: higher cv mean, then better tuning rank)",
                None => "best_config view: highest cv mean - cv std (ties: higher cv mean, then better tuning rank)",
            },
            "why": best.why,
        },
        "metrics": metrics,
        "tickers": dataset.tickers,
        "dataset": {"name": dataset.name, "dataset_id": dataset.dataset_id, "content_hash": dataset.content_hash},
        "source": {
            "study": best.study_name,
            "trial_number": best.trial_number,
            "extended_run_id": id,
            "config_rank": best.config_rank,
            "scheme": run.scheme,
        },
        "hptune_version": crate::VERSION,
    });
    let selection = Selection {
        selection_id,
        rule: best.why.clone(),
        study_name: best.study_name.clone(),
        extended_run_id: id,
        config_rank: best.config_rank,
        trial_number: best.trial_number,
        dataset_id: run.dataset_id.clone(),
        config_json: best.config_json.clone(),
        best_config_json: serde_json::to_string_pretty(&file)? + "\n",
    };
    store.record_selection(&selection, &verdict.record())?;
    let mut moved_aside = Vec::new();
    for name in [crate::layout::BEST_CONFIG, crate::layout::ANALYSIS_PLOTS] {
        if let Some(p) = super::set_aside(store, &req.out_dir.join(name))? {
            moved_aside.push(p);
        }
    }
    super::export::analysis(store, &selection.selection_id, &req.out_dir)?;
    Ok(Outcome { selection, best, verdict, moved_aside })
}
