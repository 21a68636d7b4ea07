//! No leakage in cross-validation folds, over many fold settings.

use std::collections::BTreeSet;

use proptest::prelude::*;

use hptune::cv::{folds, Scheme, MIN_TRAIN, MIN_VAL};

fn train_set(f: &hptune::cv::Fold) -> BTreeSet<usize> {
    f.train.iter().flat_map(|r| r.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn folds_never_train_on_what_they_validate(
        start in 0usize..60,
        n in 100usize..3000,
        k in 2usize..9,
        embargo in 0usize..40,
        horizon in 1usize..6,
        kfold in any::<bool>(),
    ) {
        let scheme = if kfold { Scheme::PurgedKfold } else { Scheme::WalkForward };
        let samples = start..start + n;
        let fs = match folds(samples.clone(), k, scheme, embargo, horizon) {
            Ok(fs) => fs,
            Err(e) => {
                // Refused only when a fold would be too small, and the message says which.
                let blocks = if kfold { k } else { k + 1 };
                prop_assert!(n / blocks < MIN_VAL || n / blocks < MIN_TRAIN + embargo + 2 * horizon, "{}", e);
                prop_assert!(e.contains("fold") && e.contains("--folds"), "{}", e);
                return Ok(());
            }
        };
        prop_assert_eq!(fs.len(), k);
        // Validation blocks: contiguous, in order, disjoint, covering each date once.
        let mut covered = Vec::new();
        for f in &fs {
            prop_assert!(f.val.len() >= MIN_VAL && f.n_train() >= MIN_TRAIN);
            covered.extend(f.val.clone());
        }
        let unique: BTreeSet<usize> = covered.iter().copied().collect();
        prop_assert_eq!(unique.len(), covered.len(), "a date validates twice");
        let expected: Vec<usize> = if kfold { samples.clone().collect() } else { (fs[0].val.start..samples.end).collect() };
        prop_assert_eq!(&covered, &expected);

        for f in &fs {
            let train = train_set(f);
            prop_assert_eq!(train.len(), f.n_train(), "training ranges overlap");
            prop_assert!(train.iter().all(|t| samples.contains(t)));
            // The label window t..=t+h of a training sample never touches the validation block
            // (its decisions and their labels: val.start ..= val.end - 1 + h).
            for &t in &train {
                let touches = t + horizon >= f.val.start && t <= f.val.end - 1 + horizon;
                prop_assert!(!touches, "fold {} trains on {} (label window reaches validation {:?})", f.index, t, f.val);
            }
            match scheme {
                Scheme::WalkForward => {
                    // Training ends before validation starts, with the label horizon between.
                    prop_assert!(train.iter().all(|&t| t + horizon < f.val.start));
                    prop_assert_eq!(f.embargoed, 0);
                    // Expanding window: every earlier sample outside the gap is used.
                    prop_assert_eq!(train.len(), f.val.start - horizon - samples.start);
                }
                Scheme::PurgedKfold => {
                    // The embargo lies after the block, not before: every sample before the
                    // purge is trained on, none in the embargo after it.
                    let before_end = f.val.start.saturating_sub(horizon).max(samples.start);
                    prop_assert!((samples.start..before_end).all(|t| train.contains(&t)));
                    let after_start = (f.val.end + horizon).min(samples.end);
                    let embargo_end = (after_start + embargo).min(samples.end);
                    prop_assert!((after_start..embargo_end).all(|t| !train.contains(&t)));
                    prop_assert!((embargo_end..samples.end).all(|t| train.contains(&t)));
                    prop_assert_eq!(f.embargoed, embargo_end - after_start);
                }
            }
            prop_assert_eq!(train.len() + f.val.len() + f.purged + f.embargoed,
                if kfold { n } else { f.val.end - samples.start });
        }
    }
}

#[test]
fn too_many_folds_are_refused_with_the_numbers() {
    let err = folds(0..120, 10, Scheme::WalkForward, 0, 1).unwrap_err();
    assert!(err.contains("fold 1") && err.contains("--folds"), "{err}");
    assert!(folds(0..1000, 1, Scheme::PurgedKfold, 5, 1).unwrap_err().contains("at least 2"));
}
