//! Out-of-sample outcomes per date: what a predictor's calls on one validation date came to, over
//! the panel's tickers. Every trial, fold, final model and baseline is reduced to these series;
//! the selection statistics (`validity`) compare them date by date, since the tickers of one date
//! move together and dates, not (date, ticker) pairs, are the independent unit.

use chrono::NaiveDate;

use crate::features::FeatureTable;

/// One date's outcome: the share of tickers whose next-day direction was called right, the mean
/// log-loss of the up-probabilities, and the next day's return of a long-flat strategy on the
/// calls (equal capital per ticker, long where the up-probability is above 1/2, close to close, no
/// costs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateOutcome {
    pub date: NaiveDate,
    pub hit: f64,
    pub log_loss: f64,
    pub ret: f64,
}

/// Probabilities are kept inside [EPS, 1 - EPS] for the log-loss.
const EPS: f64 = 1e-7;

/// The outcomes of up-probabilities `probs` [dates, tickers] decided at the date indices `ends`
/// (each with a next day).
pub fn per_date(table: &FeatureTable, ends: std::ops::Range<usize>, probs: &[f64]) -> Vec<DateOutcome> {
    let n = table.tickers.len();
    assert_eq!(probs.len(), ends.len() * n, "one probability per date and ticker");
    ends.zip(probs.chunks_exact(n))
        .map(|(t, p)| {
            let (mut hits, mut loss, mut ret) = (0usize, 0.0, 0.0);
            for (k, &p) in p.iter().enumerate() {
                let (now, next) = (table.closes[t * n + k], table.closes[(t + 1) * n + k]);
                let up = next > now;
                let long = p > 0.5;
                hits += usize::from(long == up);
                let p = p.clamp(EPS, 1.0 - EPS);
                loss -= if up { p.ln() } else { (1.0 - p).ln() };
                if long {
                    ret += next / now - 1.0;
                }
            }
            DateOutcome {
                date: table.dates[t],
                hit: hits as f64 / n as f64,
                log_loss: loss / n as f64,
                ret: ret / n as f64,
            }
        })
        .collect()
}

/// `per_date` of a model's logits (the sign of a logit is its call).
pub fn from_logits(table: &FeatureTable, ends: std::ops::Range<usize>, logits: &[f32]) -> Vec<DateOutcome> {
    let probs: Vec<f64> = logits.iter().map(|&z| 1.0 / (1.0 + (-(z as f64)).exp())).collect();
    per_date(table, ends, &probs)
}

/// A series' summary: mean hit share (the accuracy over every (date, ticker), as each date calls
/// every ticker), mean log-loss, and the long-flat returns' annualised Sharpe ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub dates: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    pub mean_return: f64,
    pub sharpe_annual: f64,
}

pub fn summary(outcomes: &[DateOutcome]) -> Summary {
    let col = |f: fn(&DateOutcome) -> f64| outcomes.iter().map(f).collect::<Vec<f64>>();
    let rets = col(|o| o.ret);
    Summary {
        dates: outcomes.len(),
        accuracy: crate::stats::mean(&col(|o| o.hit)),
        log_loss: crate::stats::mean(&col(|o| o.log_loss)),
        mean_return: crate::stats::mean(&rets),
        sharpe_annual: crate::validity::sharpe(&rets) * crate::validity::DAYS_PER_YEAR.sqrt(),
    }
}
