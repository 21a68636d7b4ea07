//! The backtest engine by hand: exact fills, costs, trades and equity; and its statistics against
//! backtesting.py run on the same prices and signals.

use chrono::NaiveDate;

use hptune::backtest::{self, stats, Market, Settings};

fn dates(n: usize) -> Vec<NaiveDate> {
    (0..n).map(|i| NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(i as u64)).collect()
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// 3 tickers, 10 days, opens and closes; 10 bps commission, 5 bps slippage, 30,000 cash.
/// A: long from day 0's decision (fills day 1's open 100) to day 4's (fills day 5's open 110).
/// B: short from day 2's decision (day 3's open 50) to day 6's, which flips it long (day 7's
///    open 40), held to the end (closed at day 9's close 44).
/// C: never traded.
#[test]
fn three_tickers_ten_days_by_hand() {
    let d = dates(10);
    #[rustfmt::skip]
    let open = [
        // A      B     C
        99.0,  51.0, 20.0,
        100.0, 52.0, 20.0,
        101.0, 53.0, 20.0,
        102.0, 50.0, 20.0,
        104.0, 48.0, 20.0,
        110.0, 45.0, 20.0,
        108.0, 42.0, 20.0,
        107.0, 40.0, 20.0,
        106.0, 42.0, 20.0,
        105.0, 43.0, 20.0,
    ];
    #[rustfmt::skip]
    let close = [
        100.0, 52.0, 21.0,
        101.0, 53.0, 21.0,
        102.0, 51.0, 21.0,
        103.0, 49.0, 21.0,
        109.0, 46.0, 21.0,
        109.0, 43.0, 21.0,
        107.0, 41.0, 21.0,
        106.0, 41.0, 21.0,
        105.0, 43.0, 21.0,
        104.0, 44.0, 22.0,
    ];
    let mut targets = vec![0i8; 30];
    for t in 0..4 {
        targets[t * 3] = 1; // A long, decided at the closes of days 0..=3
    }
    for t in 2..6 {
        targets[t * 3 + 1] = -1; // B short, days 2..=5
    }
    for t in 6..10 {
        targets[t * 3 + 1] = 1; // B long from day 6 (day 9's decision is never filled)
    }
    let s = Settings { commission_bps: 10.0, slippage_bps: 5.0, initial_cash: 30_000.0 };
    let market = Market { dates: &d, tickers: 3, close: &close, open: Some(&open) };
    let out = backtest::run(&market, &targets, &s);

    let (c, slip, sleeve) = (0.001, 0.0005, 10_000.0);
    // A: buy at 100 x 1.0005 with all 10,000 less commission; sell at 110 x 0.9995.
    let a_in = 100.0 * (1.0 + slip);
    let a_size = sleeve / (a_in * (1.0 + c));
    let a_out = 110.0 * (1.0 - slip);
    let a_fees = c * a_size * a_in + c * a_size * a_out;
    let a_pnl = a_size * (a_out - a_in) - a_fees;
    // B: sell short at 50 x 0.9995, buy back at 40 x 1.0005 and buy long with everything.
    let b1_in = 50.0 * (1.0 - slip);
    let b1_size = sleeve / (b1_in * (1.0 + c));
    let b1_out = 40.0 * (1.0 + slip);
    let b1_fees = c * b1_size * b1_in + c * b1_size * b1_out;
    let b1_pnl = b1_size * (b1_in - b1_out) - b1_fees;
    let b_equity = sleeve + b1_pnl;
    let b2_in = 40.0 * (1.0 + slip);
    let b2_size = b_equity / (b2_in * (1.0 + c));
    let b2_out = 44.0 * (1.0 - slip);
    let b2_fees = c * b2_size * b2_in + c * b2_size * b2_out;
    let b2_pnl = b2_size * (b2_out - b2_in) - b2_fees;

    assert_eq!(out.trades.len(), 3, "{:#?}", out.trades);
    let expected = [
        (0, 1, 1, 5, a_in, a_out, a_size, a_pnl, a_fees),
        (1, -1, 3, 7, b1_in, b1_out, b1_size, b1_pnl, b1_fees),
        (1, 1, 7, 9, b2_in, b2_out, b2_size, b2_pnl, b2_fees),
    ];
    for (t, e) in out.trades.iter().zip(expected) {
        assert_eq!((t.ticker, t.side, t.entry_bar, t.exit_bar), (e.0, e.1, e.2, e.3), "{t:?}");
        assert_eq!((t.entry_date, t.exit_date), (d[e.2], d[e.3]));
        for (got, want) in [(t.entry_price, e.4), (t.exit_price, e.5), (t.size, e.6), (t.pnl, e.7), (t.commission, e.8)]
        {
            assert!(close_to(got, want), "{t:?}: {got} != {want}");
        }
    }
    // Slippage cost: A paid 0.05 per unit each way.
    assert!(close_to(out.trades[0].slippage, a_size * (100.0 * slip + 110.0 * slip)));

    // Equity at each close: A holds from day 1 to 5, B short from day 3 to 7, then long.
    let a_cash = sleeve - a_size * a_in - c * a_size * a_in; // 0: all in
    assert!(close_to(a_cash, 0.0));
    let a_eq = |t: usize| match t {
        0 => sleeve,
        1..=4 => a_size * close[t * 3],
        _ => sleeve + a_pnl,
    };
    let b_short_cash = sleeve + b1_size * b1_in - c * b1_size * b1_in;
    let b_eq = |t: usize| match t {
        0..=2 => sleeve,
        3..=6 => b_short_cash - b1_size * close[t * 3 + 1],
        7 | 8 => b2_size * close[t * 3 + 1],
        _ => b_equity + b2_pnl,
    };
    for t in 0..10 {
        let want = a_eq(t) + b_eq(t) + sleeve;
        assert!(close_to(out.equity[t], want), "day {t}: {} != {want}", out.equity[t]);
        assert!(close_to(out.sleeve_equity[t * 3], a_eq(t)), "A day {t}");
    }
    // Buy and hold: each sleeve from the first close, no costs.
    let bh = sleeve * (104.0 / 100.0 + 44.0 / 52.0 + 22.0 / 21.0);
    assert!(close_to(out.benchmark[9], bh));

    // Statistics of the portfolio from those numbers.
    let trades: Vec<_> = out.trades.iter().collect();
    let st: std::collections::HashMap<_, _> =
        stats::compute(&d, &out.equity, &out.benchmark, &trades).into_iter().collect();
    assert_eq!(st["# Trades"], 3.0);
    assert!(close_to(st["Return [%]"], 100.0 * (out.equity[9] / 30_000.0 - 1.0)));
    assert!(close_to(st["Buy & Hold Return [%]"], 100.0 * (bh / 30_000.0 - 1.0)));
    assert!(close_to(
        st["Win Rate [%]"],
        100.0 * [a_pnl, b1_pnl, b2_pnl].iter().filter(|p| **p > 0.0).count() as f64 / 3.0
    ));
    assert!(close_to(st["Commissions [$]"], a_fees + b1_fees + b2_fees));
    // Some position is open from day 1 to day 9.
    assert!(close_to(st["Exposure Time [%]"], 90.0));
}

/// Without opens, a decision fills at its own day's close.
#[test]
fn without_opens_fills_are_at_the_decision_close() {
    let d = dates(5);
    let close = [10.0, 11.0, 12.0, 13.0, 14.0];
    let targets = [0, 1, 1, 0, 0];
    let s = Settings { commission_bps: 0.0, slippage_bps: 0.0, initial_cash: 1000.0 };
    let out = backtest::run(&Market { dates: &d, tickers: 1, close: &close, open: None }, &targets, &s);
    assert_eq!(out.trades.len(), 1);
    let t = &out.trades[0];
    assert_eq!((t.entry_bar, t.exit_bar, t.entry_price, t.exit_price), (1, 3, 11.0, 13.0));
    assert!(close_to(out.equity[4], 1000.0 * 13.0 / 11.0));
}

/// One ticker of the shipped OHLCV data, a moving-average rule, 10 bps commission: the engine's
/// statistics against backtesting.py 0.6.6's FractionalBacktest on the same bars and signals.
/// backtesting.py runs below (the README's test command installs it); its numbers were:
///   Return [%] 20.92604, Buy & Hold Return [%] 42.12655, CAGR [%] 12.75763, # Trades 28,
///   Win Rate [%] 50.0, Exposure Time [%] 63.75, Max. Drawdown [%] -9.88333, Sharpe Ratio 0.68189,
///   Sortino Ratio 1.08009, Calmar Ratio 1.29008, Profit Factor 1.91236, SQN 1.24585
///   (28 statistics compared to 1e-6 relative; Alpha and Beta are not computed here).
#[test]
fn single_ticker_stats_match_backtesting_py() {
    let panel = hptune::data::read_path(&crate::common::shipped("us6_ohlcv.csv")).unwrap();
    let bars: Vec<_> = panel.bars.iter().filter(|b| b.ticker == 0).take(400).collect();
    let d: Vec<NaiveDate> = bars.iter().map(|b| b.date).collect();
    let close: Vec<f64> = bars.iter().map(|b| b.close).collect();
    let open: Vec<f64> = bars.iter().map(|b| b.open.unwrap()).collect();
    let targets = peer_signals(&close);
    let s = Settings { commission_bps: 10.0, slippage_bps: 0.0, initial_cash: 10_000.0 };
    let out = backtest::run(&Market { dates: &d, tickers: 1, close: &close, open: Some(&open) }, &targets, &s);
    let trades: Vec<_> = out.trades.iter().collect();
    let ours: std::collections::BTreeMap<_, _> =
        stats::compute(&d, &out.equity, &out.benchmark, &trades).into_iter().collect();

    let csv = std::env::temp_dir().join(format!("peer-{}.csv", std::process::id()));
    let mut text = String::from("Date,Open,High,Low,Close,Volume,Signal\n");
    for (i, b) in bars.iter().enumerate() {
        text += &format!(
            "{},{},{},{},{},{},{}\n",
            b.date,
            b.open.unwrap(),
            b.high.unwrap(),
            b.low.unwrap(),
            b.close,
            b.volume.unwrap(),
            targets[i]
        );
    }
    std::fs::write(&csv, text).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/backtesting_peer.py");
    let out = std::process::Command::new(crate::interop::python()).arg(script).arg(&csv).output().unwrap();
    let _ = std::fs::remove_file(&csv);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (name, value) in &theirs {
        let Some(mine) = ours.get(name.as_str()) else { continue };
        let Some(want) = value.as_f64() else {
            assert!(mine.is_nan(), "{name}: ours {mine}, backtesting.py has none");
            continue;
        };
        let tol = 1e-6 * want.abs().max(1.0);
        assert!((mine - want).abs() <= tol, "{name}: ours {mine}, backtesting.py {want}");
        compared += 1;
    }
    assert!(compared >= 20, "compared only {compared} statistics: {theirs:?}");
}

/// Long while the close is above its 10-day mean, flat on the first and last days (backtesting.py
/// places no order on day 0 and this avoids its end-of-data close-out).
fn peer_signals(close: &[f64]) -> Vec<i8> {
    (0..close.len())
        .map(|t| {
            if t < 10 || t + 2 >= close.len() {
                return 0;
            }
            let mean = close[t - 9..=t].iter().sum::<f64>() / 10.0;
            i8::from(close[t] > mean)
        })
        .collect()
}
