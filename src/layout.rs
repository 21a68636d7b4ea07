//! Where each stage's files go: every output folder and file name has its home here. A stage
//! writes into a folder (`--out`); the names below are relative to it.

use std::path::{Path, PathBuf};

use crate::states::Role;

/// Stage 1's folder: trial results, the Optuna export and each trial's checkpoint.
pub const TUNING_DIR: &str = "hyperparameter_tuning_results";
/// Stage 2's folder: cross-validation results and each fold's checkpoint.
pub const EXTENDED_DIR: &str = "extended_training_results";
/// Stage 4's folder: the final model's configuration, checkpoints and history.
pub const FINAL_DIR: &str = "final_model";
/// Stage 5's folder: statistics, trades and the equity curve.
pub const BACKTEST_DIR: &str = "backtesting_results";

/// `hptune report`'s page, by default in the working folder.
pub const REPORT_HTML: &str = "hptune-report.html";

pub const TRIAL_RESULTS: &str = "trial_results.json";
pub const HISTORY_JSON: &str = "optimization_history.json";
pub const HISTORY_PNG: &str = "optimization_history.png";
pub const SLICES_PNG: &str = "param_slices.png";
pub const OPTUNA_DB: &str = "optimization_study.db";
pub const EXTENDED_RESULTS: &str = "extended_training_results.json";
pub const BEST_CONFIG: &str = "best_config.json";
pub const ANALYSIS_PLOTS: &str = "analysis_plots";
pub const FOLD_SCORES_PNG: &str = "cv_fold_scores.png";
pub const TUNING_VS_CV_PNG: &str = "tuning_vs_cv.png";
pub const CONFIG: &str = "config.json";
pub const TRAINING_RESULTS: &str = "training_results.json";
pub const TRAINING_CURVES_PNG: &str = "training_curves.png";
pub const STATS: &str = "stats.json";
pub const TRADES_CSV: &str = "trades.csv";
pub const EQUITY_CSV: &str = "equity_curve.csv";
pub const EQUITY_PNG: &str = "equity_curve.png";

/// The checkpoint folder of final training's `role` under its folder: `best_model/`, `final_model/`.
pub fn final_checkpoint_dir(final_dir: &Path, role: Role) -> PathBuf {
    final_dir.join(format!("{role}_model"))
}

/// A trial's checkpoint folder under the tuning folder: named by study, so studies never mix.
pub fn trial_checkpoint_dir(tuning_dir: &Path, study: &str, number: usize) -> PathBuf {
    study_checkpoints_dir(tuning_dir, study).join(format!("trial_{number}"))
}

/// The folder that holds a study's trial checkpoints.
pub fn study_checkpoints_dir(tuning_dir: &Path, study: &str) -> PathBuf {
    tuning_dir.join("checkpoints").join(study)
}

/// A configuration's folder under the extended folder (its `config.json` and fold checkpoints).
pub fn extended_model_dir(extended_dir: &Path, rank: usize) -> PathBuf {
    extended_dir.join(format!("extended_model_{rank}"))
}

/// A fold's checkpoint folder: named by extended run, so two runs never mix.
pub fn fold_checkpoint_dir(extended_dir: &Path, rank: usize, extended_run_id: &str, fold: usize) -> PathBuf {
    extended_model_dir(extended_dir, rank).join(extended_run_id).join(format!("fold_{fold}"))
}
