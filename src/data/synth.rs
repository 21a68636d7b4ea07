//! Synthetic panels for tests and scale: correlated random walks, optionally with a planted
//! next-day dependency that a model can learn.
//!
//! Daily log return of ticker i on day t:
//!
//! ```text
//! z[i,t] = beta[i] * m[t] + e[i,t]          m ~ N(0, 1%), e[i,.] ~ N(0, sigma[i])
//! r[i,t] = signal * s[i] * sign(r[i,t-1]) + z[i,t]     s[i] = std of z[i,.]
//! ```
//!
//! so with `signal = X` tomorrow's close-to-close direction repeats today's with probability
//! Phi(X) (X = 0.25: 59.9%), and with X = 0 the panel is a pure (correlated) random walk.
//! Open, high, low and volume are generated around the closes; the planted dependency lives in
//! the close-to-close returns. Everything derives from the seed (ChaCha8), so a seed names a panel.

use chrono::{Datelike, NaiveDate, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::{Bar, DataError, Panel};

#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub tickers: usize,
    pub days: usize,
    pub seed: u64,
    pub signal: f64,
}

impl SynthSpec {
    /// The default dataset name: `synth_20x1000_seed7`, with `_signal0.25` when a signal is planted.
    pub fn default_name(&self) -> String {
        let base = format!("synth_{}x{}_seed{}", self.tickers, self.days, self.seed);
        if self.signal > 0.0 {
            format!("{base}_signal{}", self.signal)
        } else {
            base
        }
    }
}

/// Business days (Monday to Friday) from 2000-01-03.
fn business_days(n: usize) -> Vec<NaiveDate> {
    let mut d = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(d);
        }
        d = d.succ_opt().unwrap();
    }
    out
}

/// The most rows (tickers x days) a synthetic panel has: 100 million bars are about 5 GB in
/// memory before they are stored.
pub const MAX_ROWS: usize = 100_000_000;

pub fn generate(spec: &SynthSpec) -> Result<Panel, DataError> {
    if spec.tickers == 0 || spec.days < 2 {
        return Err(DataError::Invalid(format!(
            "synth needs --tickers >= 1 and --days >= 2, got {} and {}",
            spec.tickers, spec.days
        )));
    }
    match spec.tickers.checked_mul(spec.days) {
        Some(rows) if rows <= MAX_ROWS => {}
        _ => {
            return Err(DataError::Invalid(format!(
                "synth --tickers {} --days {} makes more than {MAX_ROWS} rows: use fewer tickers or days",
                spec.tickers, spec.days
            )))
        }
    }
    if !spec.signal.is_finite() || !(0.0..=3.0).contains(&spec.signal) {
        return Err(DataError::Invalid(format!("--signal must lie in [0, 3], got {}", spec.signal)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let n = spec.tickers;
    let width = (n - 1).to_string().len();
    let tickers: Vec<String> = (0..n).map(|i| format!("S{i:0width$}")).collect();
    let beta: Vec<f64> = (0..n).map(|_| rng.gen_range(0.5..1.5)).collect();
    let sigma: Vec<f64> = (0..n).map(|_| rng.gen_range(0.01..0.025)).collect();
    let sigma_m = 0.01;
    let s: Vec<f64> = (0..n).map(|i| (beta[i] * beta[i] * sigma_m * sigma_m + sigma[i] * sigma[i]).sqrt()).collect();
    let std_normal = Normal::new(0.0, 1.0).unwrap();
    let mut close: Vec<f64> = (0..n).map(|_| rng.gen_range(20.0..200.0)).collect();
    let mut last_r = vec![0.0f64; n];
    let dates = business_days(spec.days);
    let mut bars = Vec::with_capacity(n * spec.days);
    for (t, &date) in dates.iter().enumerate() {
        let m = sigma_m * std_normal.sample(&mut rng);
        for i in 0..n {
            let z = beta[i] * m + sigma[i] * std_normal.sample(&mut rng);
            let r = if t == 0 { 0.0 } else { spec.signal * s[i] * sign(last_r[i]) + z };
            let gap = 0.2 * s[i] * std_normal.sample(&mut rng);
            let prev = close[i];
            let c = prev * r.exp();
            let o = prev * gap.exp();
            let wick_hi = (0.5 * s[i] * std_normal.sample(&mut rng)).abs();
            let wick_lo = (0.5 * s[i] * std_normal.sample(&mut rng)).abs();
            let volume = (1e6 * (0.5 * std_normal.sample(&mut rng)).exp()).round();
            bars.push(Bar {
                date,
                ticker: i as u32,
                open: Some(round6(o)),
                high: Some(round6(o.max(c) * wick_hi.exp())),
                low: Some(round6(o.min(c) * (-wick_lo).exp())),
                close: round6(c),
                volume: Some(volume),
            });
            close[i] = c;
            last_r[i] = if t == 0 { z } else { r };
        }
    }
    Panel::new(tickers, bars)
}

fn sign(x: f64) -> f64 {
    if x >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// Prices are stored to 6 decimals, as in the shipped files, so a CSV round trip is exact.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
