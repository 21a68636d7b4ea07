//! Cross-validation folds by date, without leakage.
//!
//! Folds are made over sample decision-date indices, so every ticker of a date falls on one side.
//! A sample decided at date t has its label window t..=t+horizon (the next close). A training
//! sample must not share a date with a validation label window:
//!
//! - walk-forward: the training window expands; fold i validates block i of k+1 equal blocks and
//!   trains on every sample before it whose label window ends before the block starts (a gap of
//!   the label horizon). Nothing after a block is trained on, so there is nothing to embargo.
//! - purged k-fold: fold i validates block i of k; training samples whose label window touches
//!   the block are purged on both sides, and the `embargo` samples right after the purged ones
//!   are dropped too (their features still remember the validation block).

use std::ops::Range;

/// A fold accepts as few samples as a split does.
pub use crate::split::{MIN_TRAIN, MIN_VAL};

/// Days from a decision to the end of its label: the next close.
pub const LABEL_HORIZON: usize = 1;

crate::states::states! {
    /// How folds are cut from the training span.
    #[derive(clap::ValueEnum)]
    Scheme {
        /// Each fold validates a later block and trains on everything before it.
        WalkForward = "walk-forward",
        /// Fold i validates block i of k, purged and embargoed around it.
        PurgedKfold = "purged-kfold",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// 1-based.
    pub index: usize,
    /// Decision-date indices of the training samples, in order (one range, or two for k-fold).
    pub train: Vec<Range<usize>>,
    /// Decision-date indices of the validation samples.
    pub val: Range<usize>,
    /// Training samples removed because their label window touches the validation block.
    pub purged: usize,
    /// Training samples removed by the embargo after the block.
    pub embargoed: usize,
}

impl Fold {
    pub fn n_train(&self) -> usize {
        self.train.iter().map(|r| r.len()).sum()
    }

    /// First and last training decision-date index.
    pub fn train_bounds(&self) -> (usize, usize) {
        (self.train[0].start, self.train.last().unwrap().end - 1)
    }
}

/// The folds over the samples decided at `samples` (date indices).
pub fn folds(
    samples: Range<usize>,
    k: usize,
    scheme: Scheme,
    embargo: usize,
    horizon: usize,
) -> Result<Vec<Fold>, String> {
    if k < 2 {
        return Err(format!("--folds must be at least 2, got {k}"));
    }
    let n = samples.len();
    let blocks = match scheme {
        Scheme::WalkForward => k + 1,
        Scheme::PurgedKfold => k,
    };
    let edge = |j: usize| samples.start + (j * n + blocks / 2) / blocks;
    let mut out = Vec::with_capacity(k);
    for i in 1..=k {
        let fold = match scheme {
            Scheme::WalkForward => {
                let val = edge(i)..edge(i + 1);
                let end = val.start.saturating_sub(horizon).max(samples.start);
                Fold {
                    index: i,
                    train: std::iter::once(samples.start..end).collect(),
                    purged: val.start - end,
                    embargoed: 0,
                    val,
                }
            }
            Scheme::PurgedKfold => {
                let val = edge(i - 1)..edge(i);
                let before = samples.start..val.start.saturating_sub(horizon).max(samples.start);
                let purge_end = (val.end + horizon).min(samples.end);
                let after = (purge_end + embargo).min(samples.end)..samples.end;
                let train: Vec<_> = [before.clone(), after.clone()].into_iter().filter(|r| !r.is_empty()).collect();
                Fold {
                    index: i,
                    train,
                    purged: (val.start - before.end) + (purge_end - val.end),
                    embargoed: after.start - purge_end,
                    val,
                }
            }
        };
        if fold.n_train() < MIN_TRAIN || fold.val.len() < MIN_VAL {
            return Err(format!(
                "{} with {k} folds leaves fold {i} {} training and {} validation samples of the {n} before the holdout \
                 (at least {MIN_TRAIN} and {MIN_VAL} needed): use fewer --folds, a smaller --embargo, or a longer dataset",
                scheme.as_str(),
                fold.n_train(),
                fold.val.len()
            ));
        }
        out.push(fold);
    }
    Ok(out)
}
