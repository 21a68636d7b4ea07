//! Backtest statistics under backtesting.py's names and formulas (`backtesting/_stats.py`,
//! version 0.6): daily data, 252 trading days a year, risk-free rate 0. Durations are in days.
//! A statistic that is undefined (no trades, no losses, ...) is NaN, as there.

use chrono::NaiveDate;

use super::Trade;
use crate::stats::{mean, sample_var as var};

const TRADING_DAYS: f64 = 252.0;

/// backtesting.py's geometric mean of returns: 0 when any return is -100% or worse.
fn geometric_mean(returns: &[f64]) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    if returns.iter().any(|r| 1.0 + r <= 0.0) {
        return 0.0;
    }
    (returns.iter().map(|r| (1.0 + r).ln()).sum::<f64>() / returns.len() as f64).exp() - 1.0
}

fn or_nan(x: f64) -> f64 {
    if x == 0.0 {
        f64::NAN
    } else {
        x
    }
}

fn days(a: NaiveDate, b: NaiveDate) -> f64 {
    (b - a).num_days() as f64
}

/// The statistics of one equity curve (at each day's close) with its trades, against the
/// buy-and-hold curve `benchmark` of the same capital. Names and order as backtesting.py prints.
/// Long because it is one table: each figure is a line, in backtesting.py's order, beside the
/// inputs it shares with the others.
pub fn compute(dates: &[NaiveDate], equity: &[f64], benchmark: &[f64], trades: &[&Trade]) -> Vec<(&'static str, f64)> {
    let n = equity.len();
    assert!(n > 0 && dates.len() == n && benchmark.len() == n);
    let mut peak = f64::NEG_INFINITY;
    let dd: Vec<f64> = equity
        .iter()
        .map(|&e| {
            peak = peak.max(e);
            1.0 - e / peak
        })
        .collect();
    // Drawdown periods: between consecutive days at a peak (and the last day).
    let mut at_peak: Vec<usize> = (0..n).filter(|&i| dd[i] == 0.0).collect();
    if at_peak.last() != Some(&(n - 1)) {
        at_peak.push(n - 1);
    }
    let (mut dd_durations, mut dd_peaks) = (Vec::new(), Vec::new());
    for w in at_peak.windows(2) {
        if w[1] > w[0] + 1 {
            dd_durations.push(days(dates[w[0]], dates[w[1]]));
            dd_peaks.push(dd[w[0]..=w[1]].iter().copied().fold(f64::NEG_INFINITY, f64::max));
        }
    }
    let mut exposed = vec![false; n];
    for t in trades {
        exposed[t.entry_bar..=t.exit_bar].iter_mut().for_each(|e| *e = true);
    }
    let day_returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let gmean_day = if day_returns.is_empty() { 0.0 } else { geometric_mean(&day_returns) };
    let ann_return = (1.0 + gmean_day).powf(TRADING_DAYS) - 1.0;
    let ann_vol = ((var(&day_returns) + (1.0 + gmean_day).powi(2)).powf(TRADING_DAYS)
        - (1.0 + gmean_day).powf(2.0 * TRADING_DAYS))
    .sqrt();
    let years = days(dates[0], dates[n - 1]) / 365.25;
    let downside = mean(&day_returns.iter().map(|r| r.min(0.0).powi(2)).collect::<Vec<_>>()).sqrt();
    let max_dd = dd.iter().copied().fold(0.0, f64::max);
    let pl: Vec<f64> = trades.iter().map(|t| t.pnl).collect();
    let returns: Vec<f64> = trades.iter().map(|t| t.return_pct).collect();
    let durations: Vec<f64> = trades.iter().map(|t| days(t.entry_date, t.exit_date)).collect();
    let n_trades = trades.len() as f64;
    let win_rate = if trades.is_empty() { f64::NAN } else { pl.iter().filter(|&&p| p > 0.0).count() as f64 / n_trades };
    let wins: Vec<f64> = pl.iter().copied().filter(|&p| p > 0.0).collect();
    let losses: Vec<f64> = pl.iter().copied().filter(|&p| p < 0.0).collect();
    let max_of = |v: &[f64]| v.iter().copied().reduce(f64::max).unwrap_or(f64::NAN);
    let min_of = |v: &[f64]| v.iter().copied().reduce(f64::min).unwrap_or(f64::NAN);
    vec![
        ("Exposure Time [%]", 100.0 * exposed.iter().filter(|&&e| e).count() as f64 / n as f64),
        ("Equity Final [$]", equity[n - 1]),
        ("Equity Peak [$]", max_of(equity)),
        ("Commissions [$]", trades.iter().map(|t| t.commission).sum()),
        ("Return [%]", 100.0 * (equity[n - 1] - equity[0]) / equity[0]),
        ("Buy & Hold Return [%]", 100.0 * (benchmark[n - 1] - benchmark[0]) / benchmark[0]),
        ("Return (Ann.) [%]", 100.0 * ann_return),
        ("Volatility (Ann.) [%]", 100.0 * ann_vol),
        (
            "CAGR [%]",
            if years > 0.0 { 100.0 * ((equity[n - 1] / equity[0]).powf(1.0 / years) - 1.0) } else { f64::NAN },
        ),
        ("Sharpe Ratio", 100.0 * ann_return / or_nan(100.0 * ann_vol)),
        ("Sortino Ratio", ann_return / (downside * TRADING_DAYS.sqrt())),
        ("Calmar Ratio", ann_return / or_nan(max_dd)),
        ("Max. Drawdown [%]", -100.0 * max_dd),
        ("Avg. Drawdown [%]", -100.0 * mean(&dd_peaks)),
        ("Max. Drawdown Duration", max_of(&dd_durations)),
        ("Avg. Drawdown Duration", mean(&dd_durations).ceil()),
        ("# Trades", n_trades),
        ("Win Rate [%]", 100.0 * win_rate),
        ("Best Trade [%]", 100.0 * max_of(&returns)),
        ("Worst Trade [%]", 100.0 * min_of(&returns)),
        ("Avg. Trade [%]", 100.0 * geometric_mean(&returns)),
        ("Max. Trade Duration", max_of(&durations)),
        ("Avg. Trade Duration", mean(&durations).ceil()),
        (
            "Profit Factor",
            returns.iter().filter(|&&r| r > 0.0).sum::<f64>()
                / or_nan(returns.iter().filter(|&&r| r < 0.0).sum::<f64>().abs()),
        ),
        ("Expectancy [%]", 100.0 * mean(&returns)),
        ("SQN", n_trades.sqrt() * mean(&pl) / or_nan(var(&pl).sqrt())),
        ("Kelly Criterion", win_rate - (1.0 - win_rate) / (mean(&wins) / -mean(&losses))),
    ]
}
