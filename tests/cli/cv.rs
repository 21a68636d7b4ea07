//! No leakage in cross-validation folds, over many fold settings.

use std::collections::BTreeSet;

use proptest::prelude::*;

use hptune::cv::{Cv, Fold, Scheme, MIN_TRAIN, MIN_VAL};

fn train_set(f: &Fold) -> BTreeSet<usize> {
    f.train.iter().flat_map(|r| r.clone()).collect()
}

fn binomial(n: usize, k: usize) -> usize {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

fn scheme_strategy() -> impl Strategy<Value = Scheme> {
    prop_oneof![Just(Scheme::WalkForward), Just(Scheme::PurgedKfold), Just(Scheme::Cpcv)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn folds_never_train_on_what_they_validate(
        start in 0usize..60,
        n in 100usize..3000,
        k in 2usize..9,
        test_groups in 1usize..4,
        embargo in 0usize..40,
        horizon in 1usize..6,
        scheme in scheme_strategy(),
    ) {
        let test_groups = if scheme == Scheme::Cpcv { test_groups.min(k - 1) } else { 1 };
        let cv = Cv { scheme, folds: k, test_groups, embargo, horizon };
        let samples = start..start + n;
        let walk = scheme == Scheme::WalkForward;
        let fs = match cv.folds(samples.clone()) {
            Ok(fs) => fs,
            Err(e) => {
                // Refused only when a fold would be too small, and the message says which.
                let blocks = if walk { k + 1 } else { k };
                let block = n / blocks;
                // The smallest training set: one block less the purges and embargoes of the
                // blocks beside it (walk-forward's first fold, k-fold with 2, CPCV with N-1 tested).
                let needed = MIN_TRAIN + test_groups * (embargo + 2 * horizon + 1);
                prop_assert!(block < needed || block * test_groups < MIN_VAL, "{}", e);
                prop_assert!(e.contains("fold") && e.contains("--folds"), "{}", e);
                return Ok(());
            }
        };
        let splits = if walk { k } else { binomial(k, test_groups) };
        prop_assert_eq!(fs.len(), splits);
        // Each group is tested in exactly C(N-1, k-1) splits (once for the other schemes), and
        // the validated dates of the splits that test a group are the group's, contiguous.
        let groups = if walk { k + 1 } else { k };
        let mut tested: Vec<Vec<Range>> = vec![Vec::new(); groups + 1];
        for f in &fs {
            prop_assert!(f.n_val() >= MIN_VAL && f.n_train() >= MIN_TRAIN);
            prop_assert_eq!(f.groups.len(), test_groups);
            prop_assert_eq!(f.val.len(), test_groups);
            for (g, r) in f.groups.iter().zip(&f.val) {
                tested[*g].push(r.clone());
            }
        }
        let per_group = if walk { 1 } else { binomial(k - 1, test_groups - 1) };
        let mut covered = Vec::new();
        for (g, ranges) in tested.iter().enumerate().skip(1) {
            if walk && g == 1 {
                prop_assert!(ranges.is_empty(), "walk-forward validates its first block");
                continue;
            }
            prop_assert_eq!(ranges.len(), per_group, "group {} tested {} times", g, ranges.len());
            prop_assert!(ranges.iter().all(|r| *r == ranges[0]));
            covered.extend(ranges[0].clone());
        }
        let expected: Vec<usize> = if walk { (fs[0].val[0].start..samples.end).collect() } else { samples.clone().collect() };
        prop_assert_eq!(&covered, &expected, "the groups do not tile the span");

        for f in &fs {
            let train = train_set(f);
            prop_assert_eq!(train.len(), f.n_train(), "training ranges overlap");
            prop_assert!(train.iter().all(|t| samples.contains(t)));
            for v in &f.val {
                // The label window t..=t+h of a training sample never touches a validation
                // block (its decisions and their labels: v.start ..= v.end - 1 + h).
                for &t in &train {
                    let touches = t + horizon >= v.start && t <= v.end - 1 + horizon;
                    prop_assert!(!touches, "fold {} trains on {} (label window reaches validation {:?})", f.index, t, v);
                }
                if !walk {
                    // The embargo lies after each block's purge, not before it.
                    let after_start = (v.end + horizon).min(samples.end);
                    let embargo_end = (after_start + embargo).min(samples.end);
                    prop_assert!((after_start..embargo_end).all(|t| !train.contains(&t)));
                }
            }
            let in_val = |t: usize| f.val.iter().any(|v| v.contains(&t));
            match scheme {
                Scheme::WalkForward => {
                    // Training ends before validation starts, with the label horizon between.
                    prop_assert!(train.iter().all(|&t| t + horizon < f.val[0].start));
                    prop_assert_eq!(f.embargoed, 0);
                    // Expanding window: every earlier sample outside the gap is used.
                    prop_assert_eq!(train.len(), f.val[0].start - horizon - samples.start);
                }
                Scheme::PurgedKfold | Scheme::Cpcv => {
                    // Nothing else is dropped: a sample trains unless it validates, its label
                    // window touches a block, or it lies in an embargo after one.
                    for t in samples.clone() {
                        let near = f.val.iter().any(|v| t + horizon >= v.start && t <= v.end - 1 + horizon);
                        let embargoed = f.val.iter().any(|v| t >= v.end + horizon && t < v.end + horizon + embargo);
                        prop_assert_eq!(train.contains(&t), !in_val(t) && !near && !embargoed, "sample {}", t);
                    }
                }
            }
            prop_assert_eq!(train.len() + f.n_val() + f.purged + f.embargoed,
                if walk { f.val[0].end - samples.start } else { n });
        }

        // CPCV's paths: C(N-1, k-1) of them, each covering every date exactly once, each group
        // from a fold that tests it, and every (fold, group) a fold tests used by one path.
        let paths = cv.paths();
        if scheme != Scheme::Cpcv {
            prop_assert!(paths.is_empty());
        } else {
            prop_assert_eq!(paths.len(), per_group);
            let mut used = BTreeSet::new();
            for path in &paths {
                prop_assert_eq!(path.len(), k);
                let mut dates = Vec::new();
                for (g, &fold) in path.iter().enumerate() {
                    let f = &fs[fold - 1];
                    let at = f.groups.iter().position(|&x| x == g + 1);
                    prop_assert!(at.is_some(), "path takes group {} from fold {}, which does not test it", g + 1, fold);
                    dates.extend(f.val[at.unwrap()].clone());
                    prop_assert!(used.insert((fold, g + 1)), "fold {} group {} used twice", fold, g + 1);
                }
                prop_assert_eq!(&dates, &expected);
            }
            prop_assert_eq!(used.len(), splits * test_groups);
        }
    }
}

type Range = std::ops::Range<usize>;

#[test]
fn too_many_folds_are_refused_with_the_numbers() {
    let cv = |scheme, folds, test_groups| Cv { scheme, folds, test_groups, embargo: 0, horizon: 1 };
    let err = cv(Scheme::WalkForward, 10, 1).folds(0..120).unwrap_err();
    assert!(err.contains("fold 1") && err.contains("--folds"), "{err}");
    assert!(cv(Scheme::PurgedKfold, 1, 1).folds(0..1000).unwrap_err().contains("at least 2"));
    let err = cv(Scheme::Cpcv, 6, 6).folds(0..1000).unwrap_err();
    assert!(err.contains("--test-groups") && err.contains("6"), "{err}");
}

#[test]
fn cpcv_with_six_groups_and_two_tested_has_fifteen_splits_and_five_paths() {
    let cv = Cv { scheme: Scheme::Cpcv, folds: 6, test_groups: 2, embargo: 5, horizon: 1 };
    let folds = cv.folds(0..1200).unwrap();
    assert_eq!(folds.len(), 15);
    assert_eq!(folds[0].groups, [1, 2]);
    assert_eq!(folds[14].groups, [5, 6]);
    let paths = cv.paths();
    assert_eq!(paths.len(), 5);
    // Path 1 takes each group from the first split that tests it: group 1 from split {1,2},
    // groups 2..6 from the splits {1,2}, {1,3}, ..., {1,6}.
    assert_eq!(paths[0], [1, 1, 2, 3, 4, 5]);
    assert_eq!(paths[4], [5, 9, 12, 14, 15, 15]);
}
