//! Features and labels without look-ahead.
//!
//! The panel is aligned to the dates on which every ticker has a bar. For ticker k at date t the
//! features use bars at dates <= t only:
//!
//! | feature | definition |
//! |---|---|
//! | `ret_1`, `ret_5`, `ret_20` | ln(close[t] / close[t-h]) |
//! | `vol_20` | standard deviation of the daily log returns of t-19..=t |
//! | `range` (OHLCV) | ln(high[t] / low[t]) |
//! | `body` (OHLCV) | ln(close[t] / open[t]) |
//! | `volume_20` (OHLCV) | ln((volume[t] + 1) / (mean volume of t-19..=t + 1)) |
//! | `dir_1` | today's direction: the sign of `ret_1` (1, 0 or -1) |
//!
//! `dir_1` comes last (it was added after the others): a model trained on the features before it
//! reads a table cut to its own width (`FeatureTable::for_model`).
//!
//! A sample at date t is the window t-seq_len+1..=t of every ticker's features, in the dataset's
//! ticker order (column = ticker * n_features + feature); its labels are each ticker's next-day
//! direction, close[t+1] > close[t]. Scalers are fitted on the rows of a training span only.

use chrono::NaiveDate;

use crate::data::Panel;

/// Days of history the features need: the first date with every feature is index WARMUP.
pub const WARMUP: usize = 20;

const CLOSE_FEATURES: &[&str] = &["ret_1", "ret_5", "ret_20", "vol_20", "dir_1"];
const OHLCV_FEATURES: &[&str] = &["ret_1", "ret_5", "ret_20", "vol_20", "range", "body", "volume_20", "dir_1"];

/// A panel aligned on common dates, with its feature matrix.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    pub tickers: Vec<String>,
    pub dates: Vec<NaiveDate>,
    /// Names of the per-ticker features.
    pub names: &'static [&'static str],
    /// [dates, tickers * names] row-major; rows before WARMUP are NaN.
    pub values: Vec<f32>,
    /// [dates, tickers] closes, for labels and backtests.
    pub closes: Vec<f64>,
    /// [dates, tickers] opens, when the data has them (backtest fills).
    pub opens: Option<Vec<f64>>,
}

impl FeatureTable {
    pub fn width(&self) -> usize {
        self.tickers.len() * self.names.len()
    }

    pub fn row(&self, t: usize) -> &[f32] {
        &self.values[t * self.width()..(t + 1) * self.width()]
    }

    /// The table a model whose scaler is `width` wide reads: this one, or, for a model trained
    /// before the last feature was added (one feature fewer per ticker), this one without it.
    pub fn for_model(self, width: usize) -> Self {
        let (n, f) = (self.tickers.len(), self.names.len());
        if width != n * (f - 1) {
            return self;
        }
        let values = self.values.chunks_exact(f).flat_map(|c| &c[..f - 1]).copied().collect();
        Self { names: &self.names[..f - 1], values, ..self }
    }

    /// Next-day direction of each ticker for the sample at date index t (needs t + 1 < dates).
    pub fn labels(&self, t: usize) -> impl Iterator<Item = f32> + '_ {
        let n = self.tickers.len();
        (0..n).map(move |k| if self.closes[(t + 1) * n + k] > self.closes[t * n + k] { 1.0 } else { 0.0 })
    }
}

/// Computes the feature table of a panel.
pub fn compute(panel: &Panel) -> FeatureTable {
    let n = panel.tickers.len();
    let ohlcv = panel.has_ohlcv();
    // Align: keep dates where every ticker has a bar (bars are sorted by date, then ticker).
    let mut dates = Vec::new();
    let mut close = Vec::new();
    let mut open = Vec::new();
    let mut high = Vec::new();
    let mut low = Vec::new();
    let mut volume = Vec::new();
    for day in panel.bars.chunk_by(|a, b| a.date == b.date) {
        if day.len() != n {
            continue;
        }
        dates.push(day[0].date);
        for b in day {
            close.push(b.close);
            if ohlcv {
                open.push(b.open.unwrap());
                high.push(b.high.unwrap());
                low.push(b.low.unwrap());
                volume.push(b.volume.unwrap());
            }
        }
    }
    let names = if ohlcv { OHLCV_FEATURES } else { CLOSE_FEATURES };
    let f = names.len();
    let d = dates.len();
    let mut values = vec![f32::NAN; d * n * f];
    let at = |v: &Vec<f64>, t: usize, k: usize| v[t * n + k];
    for k in 0..n {
        for t in WARMUP..d {
            let c = at(&close, t, k);
            let ret = |h: usize| (c / at(&close, t - h, k)).ln();
            let daily: Vec<f64> = (t - 19..=t).map(|s| (at(&close, s, k) / at(&close, s - 1, k)).ln()).collect();
            let mut row = vec![ret(1), ret(5), ret(20), crate::stats::sample_std(&daily)];
            if ohlcv {
                let mean_v = (t - 19..=t).map(|s| at(&volume, s, k)).sum::<f64>() / 20.0;
                row.push((at(&high, t, k) / at(&low, t, k)).ln());
                row.push((c / at(&open, t, k)).ln());
                row.push(((at(&volume, t, k) + 1.0) / (mean_v + 1.0)).ln());
            }
            row.push(ret(1).signum() * f64::from(u8::from(ret(1) != 0.0)));
            let base = t * n * f + k * f;
            for (j, v) in row.into_iter().enumerate() {
                values[base + j] = v as f32;
            }
        }
    }
    let opens = ohlcv.then_some(open);
    FeatureTable { tickers: panel.tickers.clone(), dates, names, values, closes: close, opens }
}

/// Per-column standardisation, fitted on training rows only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    /// Fits on the feature rows of date indices `rows` (each at or after WARMUP).
    pub fn fit(table: &FeatureTable, rows: impl IntoIterator<Item = usize>) -> Self {
        let w = table.width();
        let mut sum = vec![0f64; w];
        let mut sq = vec![0f64; w];
        let mut count = 0usize;
        for t in rows {
            count += 1;
            for (j, &v) in table.row(t).iter().enumerate() {
                sum[j] += v as f64;
                sq[j] += (v as f64) * (v as f64);
            }
        }
        let count = count.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| {
                let var = (s / count - m * m).max(0.0);
                if var > 1e-12 {
                    var.sqrt() as f32
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    pub fn apply(&self, row: &[f32], out: &mut Vec<f32>) {
        out.extend(row.iter().zip(self.mean.iter().zip(&self.std)).map(|(v, (m, s))| (v - m) / s));
    }
}
