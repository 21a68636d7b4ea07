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
//! - combinatorial purged cross-validation (CPCV; López de Prado, "Advances in Financial Machine
//!   Learning", 2018, ch. 12): the span is cut into N groups and every choice of k of them is a
//!   split's validation set, C(N, k) splits, each purged and embargoed around every group it
//!   tests as purged k-fold is (which is CPCV with k = 1). Each group is tested in C(N-1, k-1)
//!   splits, and that many out-of-sample paths are rebuilt from them (`paths`): path j takes
//!   each group's predictions from the j-th split that tests it, so every path covers every date
//!   once with models that never trained on it.

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
        /// Every choice of k of N groups validates once, purged and embargoed around each group.
        Cpcv = "cpcv",
    }
}

/// How a cross-validation cuts a span: the scheme, its number of folds (walk-forward, purged
/// k-fold) or groups (CPCV), the groups each CPCV split tests, the embargo after each validation
/// block and the label horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cv {
    pub scheme: Scheme,
    pub folds: usize,
    /// k of CPCV; 1 for the other schemes.
    pub test_groups: usize,
    pub embargo: usize,
    pub horizon: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// 1-based.
    pub index: usize,
    /// Decision-date indices of the training samples, in order (contiguous runs).
    pub train: Vec<Range<usize>>,
    /// Decision-date indices of the validation samples, one run per group it tests, in order.
    pub val: Vec<Range<usize>>,
    /// The 1-based groups (blocks) it validates.
    pub groups: Vec<usize>,
    /// Training samples removed because their label window touches a validation block.
    pub purged: usize,
    /// Training samples removed by the embargo after each block.
    pub embargoed: usize,
}

impl Fold {
    pub fn n_train(&self) -> usize {
        self.train.iter().map(|r| r.len()).sum()
    }

    pub fn n_val(&self) -> usize {
        self.val.iter().map(|r| r.len()).sum()
    }

    /// First and last training decision-date index.
    pub fn train_bounds(&self) -> (usize, usize) {
        (self.train[0].start, self.train.last().unwrap().end - 1)
    }

    /// First and last validation decision-date index.
    pub fn val_bounds(&self) -> (usize, usize) {
        (self.val[0].start, self.val.last().unwrap().end - 1)
    }
}

impl Cv {
    /// The folds over the samples decided at `samples` (date indices).
    pub fn folds(&self, samples: Range<usize>) -> Result<Vec<Fold>, String> {
        let (k, scheme) = (self.folds, self.scheme);
        if k < 2 {
            return Err(format!("--folds must be at least 2, got {k}"));
        }
        if scheme == Scheme::Cpcv && !(1..k).contains(&self.test_groups) {
            return Err(format!(
                "--test-groups must be at least 1 and below --folds ({k} groups), got {}",
                self.test_groups
            ));
        }
        let n = samples.len();
        let blocks = if scheme == Scheme::WalkForward { k + 1 } else { k };
        let edge = |j: usize| samples.start + (j * n + blocks / 2) / blocks;
        let block = |j: usize| edge(j)..edge(j + 1);
        let out: Vec<Fold> = match scheme {
            Scheme::WalkForward => (1..=k)
                .map(|i| {
                    let val = block(i);
                    let end = val.start.saturating_sub(self.horizon).max(samples.start);
                    Fold {
                        index: i,
                        train: std::iter::once(samples.start..end).collect(),
                        purged: val.start - end,
                        embargoed: 0,
                        groups: vec![i + 1],
                        val: vec![val],
                    }
                })
                .collect(),
            Scheme::PurgedKfold | Scheme::Cpcv => {
                let tested = if scheme == Scheme::Cpcv { self.test_groups } else { 1 };
                itertools::Itertools::combinations(0..k, tested)
                    .enumerate()
                    .map(|(i, groups)| {
                        self.purged_fold(i + 1, &samples, groups.iter().map(|&g| block(g)).collect(), &groups)
                    })
                    .collect()
            }
        };
        for fold in &out {
            if fold.n_train() < MIN_TRAIN || fold.n_val() < MIN_VAL {
                return Err(format!(
                    "{} with {k} folds leaves fold {} {} training and {} validation samples of the {n} before the holdout \
                     (at least {MIN_TRAIN} and {MIN_VAL} needed): use fewer --folds, a smaller --embargo, or a longer dataset",
                    scheme.as_str(),
                    fold.index,
                    fold.n_train(),
                    fold.n_val()
                ));
            }
        }
        Ok(out)
    }

    /// A fold validating the blocks `val` (in order): the samples whose label window touches a
    /// block are purged on both sides of it, the `embargo` after the purge are dropped, and
    /// the rest trains.
    fn purged_fold(&self, index: usize, samples: &Range<usize>, val: Vec<Range<usize>>, groups: &[usize]) -> Fold {
        #[derive(Clone, Copy, PartialEq)]
        enum Use {
            Train,
            Val,
            Purged,
            Embargoed,
        }
        let at = |t: usize| t - samples.start;
        let mut uses = vec![Use::Train; samples.len()];
        let mut mark = |range: Range<usize>, what: Use| {
            for t in range.start.max(samples.start)..range.end.min(samples.end) {
                if uses[at(t)] == Use::Train {
                    uses[at(t)] = what;
                }
            }
        };
        for b in &val {
            mark(b.clone(), Use::Val);
        }
        for b in &val {
            mark(b.start.saturating_sub(self.horizon)..b.start, Use::Purged);
            mark(b.end..b.end + self.horizon, Use::Purged);
        }
        for b in &val {
            mark(b.end + self.horizon..b.end + self.horizon + self.embargo, Use::Embargoed);
        }
        let mut train: Vec<Range<usize>> = Vec::new();
        for (i, u) in uses.iter().enumerate() {
            let t = samples.start + i;
            if *u == Use::Train {
                match train.last_mut() {
                    Some(r) if r.end == t => r.end = t + 1,
                    _ => train.push(t..t + 1),
                }
            }
        }
        let count = |what: Use| uses.iter().filter(|u| **u == what).count();
        Fold {
            index,
            train,
            val,
            groups: groups.iter().map(|g| g + 1).collect(),
            purged: count(Use::Purged),
            embargoed: count(Use::Embargoed),
        }
    }

    /// In words: "5 walk-forward folds", "10 cpcv splits (5 groups, 2 tested; 4 paths)".
    pub fn describe(&self) -> String {
        match self.scheme {
            Scheme::Cpcv => format!(
                "{} cpcv splits ({} groups, {} tested; {} paths)",
                itertools::Itertools::combinations(0..self.folds, self.test_groups).count(),
                self.folds,
                self.test_groups,
                self.paths().len()
            ),
            scheme => format!("{} {scheme} folds", self.folds),
        }
    }

    /// CPCV's out-of-sample paths: `paths()[j][g]` is the 1-based fold whose predictions path
    /// j + 1 takes for group g + 1 (the (j+1)-th fold that tests the group). C(N-1, k-1) paths;
    /// none for the other schemes.
    pub fn paths(&self) -> Vec<Vec<usize>> {
        if self.scheme != Scheme::Cpcv {
            return Vec::new();
        }
        let combos: Vec<Vec<usize>> = itertools::Itertools::combinations(0..self.folds, self.test_groups).collect();
        let testing = |g: usize| -> Vec<usize> {
            combos.iter().enumerate().filter(|(_, c)| c.contains(&g)).map(|(i, _)| i + 1).collect()
        };
        let per_group: Vec<Vec<usize>> = (0..self.folds).map(testing).collect();
        let n_paths = per_group.first().map_or(0, Vec::len);
        (0..n_paths).map(|j| per_group.iter().map(|folds| folds[j]).collect()).collect()
    }
}
