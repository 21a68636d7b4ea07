//! Reference predictors, scored on a study's validation dates beside its trials: what a
//! configuration must beat before it is worth anything. Each is fitted on the training span only
//! (no look-ahead) and gives an up-probability per (date, ticker) of the validation span.
//!
//! - `always_up`: every ticker up, every day (scikit-learn's DummyClassifier `constant`).
//! - `majority`: each ticker's more frequent direction over the training span (`most_frequent`).
//! - `repeat_today`: tomorrow's direction is today's (forecasting's naive forecast).
//! - `logistic`: a logistic regression shared by the tickers on each ticker's features of the
//!   day and the market's (their cross-sectional mean), standardised on the training span.

use std::ops::Range;

use nalgebra::{DMatrix, DVector};

use crate::features::{FeatureTable, Scaler};

/// One baseline's up-probabilities [dates, tickers] over the validation span.
pub struct Baseline {
    pub name: &'static str,
    pub description: &'static str,
    pub probs: Vec<f64>,
}

/// The names, in the order `score` returns them.
pub const NAMES: [&str; 4] = ["always_up", "majority", "repeat_today", "logistic"];

/// Keeps a probability on the side of its call, and off 0 and 1.
fn side(up: bool, p: f64) -> f64 {
    let p = p.clamp(0.5 + 1e-9, 0.99);
    if up {
        p
    } else {
        1.0 - p
    }
}

/// Scores every baseline for decisions at the date indices `val`, fitted on decisions at `train`
/// (their labels, at t + 1, lie before the first validation decision's).
pub fn score(table: &FeatureTable, train: Range<usize>, val: Range<usize>) -> Vec<Baseline> {
    let n = table.tickers.len();
    let up = |t: usize, k: usize| table.closes[(t + 1) * n + k] > table.closes[t * n + k];
    let up_today = |t: usize, k: usize| table.closes[t * n + k] > table.closes[(t - 1) * n + k];
    let share = |f: &dyn Fn(usize, usize) -> bool, tickers: Range<usize>| {
        let hits: usize = train.clone().map(|t| tickers.clone().filter(|&k| f(t, k)).count()).sum();
        hits as f64 / (train.len() * tickers.len()).max(1) as f64
    };
    let up_share = share(&up, 0..n);
    let ticker_up: Vec<f64> = (0..n).map(|k| share(&up, k..k + 1)).collect();
    let repeats = share(&|t, k| up(t, k) == up_today(t, k), 0..n);
    let over_val = |f: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        val.clone().flat_map(|t| (0..n).map(move |k| (t, k))).map(|(t, k)| f(t, k)).collect()
    };
    let logistic = Logistic::fit(table, train.clone());
    vec![
        Baseline { name: NAMES[0], description: "always up", probs: over_val(&|_, _| side(true, up_share)) },
        Baseline {
            name: NAMES[1],
            description: "each ticker's majority direction of the training span",
            probs: over_val(&|_, k| side(ticker_up[k] >= 0.5, ticker_up[k].max(1.0 - ticker_up[k]))),
        },
        Baseline {
            name: NAMES[2],
            description: "repeat today's direction",
            probs: over_val(&|t, k| side(up_today(t, k), repeats)),
        },
        Baseline {
            name: NAMES[3],
            description: "logistic regression on the day's features",
            probs: over_val(&|t, k| logistic.prob(table, t, k)),
        },
    ]
}

/// A logistic regression shared by the tickers: inputs are a ticker's standardised features of
/// the day, the market's (their mean over tickers) and 1; fitted by Newton's method (IRLS) with a
/// small ridge penalty, which keeps it defined when a feature separates the training labels.
struct Logistic {
    scaler: Scaler,
    weights: DVector<f64>,
}

/// Ridge penalty on the weights (not the intercept), per training sample.
const RIDGE: f64 = 1e-4;

impl Logistic {
    fn inputs(scaler: &Scaler, table: &FeatureTable, t: usize, k: usize) -> Vec<f64> {
        let f = table.names.len();
        let n = table.tickers.len();
        let mut scaled = Vec::with_capacity(table.width());
        scaler.apply(table.row(t), &mut scaled);
        let mut x: Vec<f64> = scaled[k * f..(k + 1) * f].iter().map(|&v| v as f64).collect();
        x.extend((0..f).map(|j| (0..n).map(|i| scaled[i * f + j] as f64).sum::<f64>() / n as f64));
        x.push(1.0);
        x
    }

    fn fit(table: &FeatureTable, train: Range<usize>) -> Self {
        let n = table.tickers.len();
        let scaler = Scaler::fit(table, train.clone());
        let rows: Vec<(Vec<f64>, f64)> = train
            .flat_map(|t| (0..n).map(move |k| (t, k)))
            .map(|(t, k)| {
                let y = f64::from(u8::from(table.closes[(t + 1) * n + k] > table.closes[t * n + k]));
                (Self::inputs(&scaler, table, t, k), y)
            })
            .collect();
        let d = 2 * table.names.len() + 1;
        let m = rows.len() as f64;
        let mut w = DVector::<f64>::zeros(d);
        // The penalty on every weight but the intercept (the last input).
        let ridge = DVector::<f64>::from_fn(d, |j, _| if j + 1 < d { RIDGE * m } else { 0.0 });
        for _ in 0..50 {
            let mut hess = DMatrix::<f64>::zeros(d, d);
            let mut grad = DVector::<f64>::zeros(d);
            for (x, y) in &rows {
                let x = DVector::from_column_slice(x);
                let p = 1.0 / (1.0 + (-w.dot(&x)).exp());
                grad += &x * (p - y);
                hess.ger(p * (1.0 - p), &x, &x, 1.0);
            }
            grad += ridge.component_mul(&w);
            let diagonal = hess.diagonal() + &ridge;
            hess.set_diagonal(&diagonal);
            let Some(chol) = hess.cholesky() else { break };
            let step = chol.solve(&grad);
            w -= &step;
            if step.amax() < 1e-10 {
                break;
            }
        }
        Self { scaler, weights: w }
    }

    fn prob(&self, table: &FeatureTable, t: usize, k: usize) -> f64 {
        let x = DVector::from_vec(Self::inputs(&self.scaler, table, t, k));
        (1.0 / (1.0 + (-self.weights.dot(&x)).exp())).clamp(1e-6, 1.0 - 1e-6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{generate, SynthSpec};
    use crate::outcomes::{per_date, summary};

    fn accuracies(signal: f64) -> Vec<(&'static str, f64)> {
        let panel = generate(&SynthSpec { tickers: 6, days: 1500, seed: 11, signal }).unwrap();
        let table = crate::features::compute(&panel);
        let split = crate::split::Split::new(&table, 1, 0.2).unwrap();
        score(&table, split.train.clone(), split.val.clone())
            .into_iter()
            .map(|b| (b.name, summary(&per_date(&table, split.val.clone(), &b.probs)).accuracy))
            .collect()
    }

    /// With "tomorrow repeats today" planted at Phi(0.5) = 69%, the rule finds it, and so, most of
    /// it, does the logistic regression (linear in `ret_1`, whose sign is today's direction: the
    /// other features' weights cost it a few points); the dummies do not.
    #[test]
    fn the_rule_and_the_regression_find_a_planted_signal() {
        let acc = accuracies(0.5);
        let of = |name: &str| acc.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(of("repeat_today") > 0.64, "{acc:?}");
        assert!(of("logistic") > 0.6, "{acc:?}");
        assert!(of("always_up") < 0.57 && of("majority") < 0.57, "{acc:?}");
    }

    #[test]
    fn without_a_signal_no_baseline_has_an_edge() {
        for (name, acc) in accuracies(0.0) {
            assert!((0.44..0.56).contains(&acc), "{name}: {acc}");
        }
    }
}
