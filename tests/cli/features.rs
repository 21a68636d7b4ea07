//! No look-ahead in features: changing any price after date d changes no feature at or before d.

use proptest::prelude::*;

use hptune::data::synth::{generate, SynthSpec};
use hptune::features::{compute, WARMUP};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn future_prices_change_no_past_feature(
        tickers in 1usize..5,
        days in 30usize..90,
        seed in 0u64..1000,
        cut_share in 0.0f64..1.0,
        factor in prop_oneof![0.5f64..0.99, 1.01f64..2.0],
        every_field in any::<bool>(),
    ) {
        let panel = generate(&SynthSpec { tickers, days, seed, signal: 0.3 }).unwrap();
        let d = ((days - 1) as f64 * cut_share) as usize; // last untouched date index
        let cut_date = panel.bars.iter().map(|b| b.date).collect::<std::collections::BTreeSet<_>>().into_iter().nth(d).unwrap();
        let mut changed = panel.clone();
        for b in changed.bars.iter_mut().filter(|b| b.date > cut_date) {
            b.close *= factor;
            if every_field {
                b.open = b.open.map(|v| v * factor);
                b.high = b.high.map(|v| v * factor * 1.01);
                b.low = b.low.map(|v| v * factor * 0.99);
                b.volume = b.volume.map(|v| v * 3.0);
            }
        }
        let a = compute(&panel);
        let b = compute(&changed);
        let w = a.width();
        for t in 0..=d {
            let (ra, rb) = (&a.values[t * w..(t + 1) * w], &b.values[t * w..(t + 1) * w]);
            prop_assert!(ra.iter().zip(rb).all(|(x, y)| x.to_bits() == y.to_bits()), "features at date index {t} changed");
        }
        // ... and something after d did change, so the test can fail.
        if d + 1 >= WARMUP && d + 1 < days {
            let t = d + 1;
            prop_assert_ne!(&a.values[t * w..(t + 1) * w], &b.values[t * w..(t + 1) * w]);
        }
    }
}

#[test]
fn features_are_finite_after_the_warmup_and_ordered_by_ticker() {
    let panel = generate(&SynthSpec { tickers: 3, days: 60, seed: 1, signal: 0.0 }).unwrap();
    let table = compute(&panel);
    let w = table.width();
    assert_eq!(w, 3 * table.names.len());
    assert!(table.values[..WARMUP * w].iter().all(|v| v.is_nan()));
    assert!(table.values[WARMUP * w..].iter().all(|v| v.is_finite()));
    // ret_1 of ticker 2 at date 30 is ln(close[30] / close[29]) of the third ticker.
    let close = |t: usize| panel.bars[t * 3 + 2].close;
    let expected = (close(30) / close(29)).ln() as f32;
    assert_eq!(table.values[30 * w + 2 * table.names.len()], expected);
}

/// `dir_1` is today's direction; a model trained before it existed (one feature fewer per
/// ticker) reads the table without it, every other value in place.
#[test]
fn today_s_direction_is_last_and_older_models_read_the_table_without_it() {
    let panel = generate(&SynthSpec { tickers: 3, days: 60, seed: 1, signal: 0.3 }).unwrap();
    let table = compute(&panel);
    let f = table.names.len();
    assert_eq!(table.names[f - 1], "dir_1");
    for t in WARMUP..60 {
        for k in 0..3 {
            let row = &table.values[t * 3 * f + k * f..][..f];
            assert_eq!(row[f - 1], row[0].signum() * f32::from(u8::from(row[0] != 0.0)), "date {t} ticker {k}");
        }
    }
    let old = table.clone().for_model(3 * (f - 1));
    assert_eq!(old.names, &table.names[..f - 1]);
    for (o, n) in old.values.chunks_exact(f - 1).zip(table.values.chunks_exact(f)) {
        assert!(o.iter().zip(n).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    assert_eq!(table.clone().for_model(3 * f).values.len(), table.values.len());
}
