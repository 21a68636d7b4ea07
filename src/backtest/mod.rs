//! The backtest engine: positions decided at the close of day t from data up to t, filled at the
//! next open (or at the decision day's close when the data has no opens), with commission and
//! slippage, one equal sleeve of capital per ticker. Plain numbers in, trades and equity out.
//!
//! Fills: a buy fills at price x (1 + slippage), a sell at price x (1 - slippage); commission is
//! charged on the notional of every fill. A sleeve enters with all its equity (fractional units):
//! units = equity / (fill x (1 + commission)). A trade still open on the last day is closed at the
//! last close, with costs. Statistics follow backtesting.py (`stats`).

pub mod stats;

use chrono::NaiveDate;

crate::states::states! {
    /// What the backtest does with the model's up-probability.
    #[derive(clap::ValueEnum)]
    Mode {
        /// Long when the model says up, flat otherwise.
        LongFlat = "long-flat",
        /// Long when the model says up, short otherwise.
        LongShort = "long-short",
    }
}

impl Mode {
    /// The position for an up-probability: +1 long, 0 flat, -1 short.
    pub fn position(self, probability: f64, threshold: f64) -> i8 {
        match (probability > threshold, self) {
            (true, _) => 1,
            (false, Mode::LongFlat) => 0,
            (false, Mode::LongShort) => -1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub commission_bps: f64,
    pub slippage_bps: f64,
    pub initial_cash: f64,
}

/// Prices of the simulated days: `close` (and `open`, when the data has opens) as [days, tickers].
pub struct Market<'a> {
    pub dates: &'a [NaiveDate],
    pub tickers: usize,
    pub close: &'a [f64],
    pub open: Option<&'a [f64]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    pub ticker: usize,
    /// +1 long, -1 short.
    pub side: i8,
    /// Day indices of the fills.
    pub entry_bar: usize,
    pub exit_bar: usize,
    pub entry_date: NaiveDate,
    pub exit_date: NaiveDate,
    /// Fill prices, slippage included.
    pub entry_price: f64,
    pub exit_price: f64,
    /// Units (positive).
    pub size: f64,
    /// Net of commission.
    pub pnl: f64,
    /// backtesting.py's ReturnPct: side x (exit / entry - 1) - commission / (size x entry).
    pub return_pct: f64,
    pub commission: f64,
    /// What slippage cost against the unslipped prices.
    pub slippage: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub trades: Vec<Trade>,
    /// [days, tickers]: each sleeve's equity at the close.
    pub sleeve_equity: Vec<f64>,
    /// [days]: the sum of the sleeves.
    pub equity: Vec<f64>,
    /// [days, tickers]: buy and hold of each ticker from the first close, no costs.
    pub sleeve_benchmark: Vec<f64>,
    pub benchmark: Vec<f64>,
}

struct Sleeve {
    cash: f64,
    /// Signed units held.
    units: f64,
    open: Option<Trade>,
}

impl Sleeve {
    fn fill(
        &mut self,
        k: usize,
        target: i8,
        price: f64,
        (bar, date): (usize, NaiveDate),
        s: &Settings,
        out: &mut Vec<Trade>,
    ) {
        let side = self.open.as_ref().map_or(0, |t| t.side);
        if side == target {
            return;
        }
        let c = s.commission_bps / 1e4;
        let slip = s.slippage_bps / 1e4;
        if let Some(mut t) = self.open.take() {
            // Close: sell a long (price down by slippage), buy back a short (price up).
            let px = price * (1.0 - slip * t.side as f64);
            let fee = c * t.size * px;
            self.cash += self.units * px - fee;
            self.units = 0.0;
            t.exit_bar = bar;
            t.exit_date = date;
            t.exit_price = px;
            t.commission += fee;
            t.slippage += t.size * (px - price).abs();
            t.pnl = t.side as f64 * t.size * (t.exit_price - t.entry_price) - t.commission;
            t.return_pct =
                t.side as f64 * (t.exit_price / t.entry_price - 1.0) - t.commission / (t.size * t.entry_price);
            out.push(t);
        }
        if target != 0 {
            let equity = self.cash;
            let px = price * (1.0 + slip * target as f64);
            let size = equity / (px * (1.0 + c));
            let fee = c * size * px;
            self.units = target as f64 * size;
            self.cash -= self.units * px + fee;
            self.open = Some(Trade {
                ticker: k,
                side: target,
                entry_bar: bar,
                exit_bar: bar,
                entry_date: date,
                exit_date: date,
                entry_price: px,
                exit_price: px,
                size,
                pnl: 0.0,
                return_pct: 0.0,
                commission: fee,
                slippage: size * (px - price).abs(),
            });
        }
    }
}

/// Simulates `targets` ([days, tickers] of +1/0/-1, decided at each day's close) on `market`.
/// Decisions of the last day are not filled (there is no next day); the first day's close is
/// where equity and the benchmark start.
pub fn run(market: &Market, targets: &[i8], s: &Settings) -> Outcome {
    let (days, n) = (market.dates.len(), market.tickers);
    assert_eq!(targets.len(), days * n);
    assert_eq!(market.close.len(), days * n);
    let at = |v: &[f64], t: usize, k: usize| v[t * n + k];
    let mut sleeves: Vec<Sleeve> =
        (0..n).map(|_| Sleeve { cash: s.initial_cash / n as f64, units: 0.0, open: None }).collect();
    let mut trades = Vec::new();
    let mut sleeve_equity = vec![0.0; days * n];
    let mut sleeve_benchmark = vec![0.0; days * n];
    for t in 0..days {
        for (k, sl) in sleeves.iter_mut().enumerate() {
            match market.open {
                // Yesterday's decision fills at today's open.
                Some(open) if t > 0 => {
                    sl.fill(k, targets[(t - 1) * n + k], at(open, t, k), (t, market.dates[t]), s, &mut trades)
                }
                Some(_) => {}
                // Today's decision fills at today's close (not on the last day).
                None if t + 1 < days => {
                    sl.fill(k, targets[t * n + k], at(market.close, t, k), (t, market.dates[t]), s, &mut trades)
                }
                None => {}
            }
            if t + 1 == days {
                sl.fill(k, 0, at(market.close, t, k), (t, market.dates[t]), s, &mut trades);
            }
            sleeve_equity[t * n + k] = sl.cash + sl.units * at(market.close, t, k);
            let start = s.initial_cash / n as f64;
            sleeve_benchmark[t * n + k] = start * at(market.close, t, k) / at(market.close, 0, k);
        }
    }
    trades.sort_by_key(|t| (t.entry_bar, t.ticker));
    let sum = |v: &[f64]| v.chunks(n).map(|row| row.iter().sum()).collect::<Vec<f64>>();
    Outcome { equity: sum(&sleeve_equity), benchmark: sum(&sleeve_benchmark), trades, sleeve_equity, sleeve_benchmark }
}
