//! The split of a dataset's dates for final training: the most recent `holdout` share is reserved
//! for the backtest and never trained on; of the rest, the latest `VAL_FRACTION` of the samples
//! validate (early stopping) and the earlier ones train.
//!
//! A sample ending at date t has its label at t+1, so a sample belongs to a span only when both t
//! and t+1 lie in it: the last training label date is the first validation decision date at most,
//! and no training or validation label reaches into the holdout.

use std::ops::Range;

use crate::features::{FeatureTable, WARMUP};

/// Share of the training span's samples kept for validation.
pub const VAL_FRACTION: f64 = 0.2;

/// Fewest samples a split, or a cross-validation fold, accepts in each part.
pub const MIN_TRAIN: usize = 50;
pub const MIN_VAL: usize = 10;

/// Share of the most recent dates reserved for the backtest by default.
pub const DEFAULT_HOLDOUT: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Date indices at which training samples end.
    pub train: Range<usize>,
    /// Date indices at which validation samples end.
    pub val: Range<usize>,
    /// First date index reserved for the backtest (== dates when there is no holdout).
    pub holdout_start: usize,
}

impl Split {
    pub fn new(table: &FeatureTable, seq_len: usize, holdout: f64) -> Result<Self, String> {
        if !(0.0..0.9).contains(&holdout) {
            return Err(format!("--holdout must be in [0, 0.9), got {holdout}"));
        }
        let holdout_start = holdout_start(table.dates.len(), holdout);
        let first = WARMUP + seq_len - 1;
        // Samples end at t with t + 1 < holdout_start.
        let end = holdout_start.saturating_sub(1);
        let n = end.saturating_sub(first);
        let n_val = ((n as f64) * VAL_FRACTION).round() as usize;
        let n_train = n.saturating_sub(n_val);
        if n_train < MIN_TRAIN || n_val < MIN_VAL {
            return Err(format!(
                "seq_len {seq_len} leaves {n_train} training and {n_val} validation samples in the {holdout_start} dates \
                 before the holdout (at least {MIN_TRAIN} and {MIN_VAL} needed; the features need {WARMUP} days of history): \
                 lower seq_len or --holdout, or use a longer dataset"
            ));
        }
        Ok(Self { train: first..first + n_train, val: first + n_train..end, holdout_start })
    }
}

/// The first date index of the holdout: the latest `holdout` share of `dates`.
pub fn holdout_start(dates: usize, holdout: f64) -> usize {
    dates - (dates as f64 * holdout).round() as usize
}
