//! Backtest throughput: 500 tickers x 5,000 days of synthetic OHLCV, signals flipping at random
//! (about every fifth day per ticker), next-open fills with commission and slippage; then the
//! statistics of the portfolio and of every ticker, as `hptune backtest` computes them.
//!
//! Run: `cargo bench --bench backtest_speed`. With `HPTUNE_BENCH_DUMP=DIR` it also writes the
//! prices and signals (raw little-endian f64 / i8) for `benches/vectorbt_speed.py DIR`, which
//! runs vectorbt's `Portfolio.from_signals` on the same input.

use std::time::Instant;

use hptune::backtest::{self, stats, Market, Settings};
use hptune::data::synth::{generate, SynthSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TICKERS: usize = 500;
const DAYS: usize = 5000;

fn main() -> anyhow::Result<()> {
    let panel = generate(&SynthSpec { tickers: TICKERS, days: DAYS, seed: 1, signal: 0.0 })?;
    let dates: Vec<_> = panel.bars.iter().step_by(TICKERS).map(|b| b.date).collect();
    let close: Vec<f64> = panel.bars.iter().map(|b| b.close).collect();
    let open: Vec<f64> = panel.bars.iter().map(|b| b.open.unwrap()).collect();
    assert_eq!(close.len(), TICKERS * DAYS);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut targets = vec![0i8; TICKERS * DAYS];
    for k in 0..TICKERS {
        let mut pos = 0i8;
        for t in 0..DAYS {
            if rng.gen::<f64>() < 0.2 {
                pos = 1 - pos;
            }
            targets[t * TICKERS + k] = pos;
        }
    }
    if let Some(dir) = std::env::var_os("HPTUNE_BENCH_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        let bytes = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.join("close.f64"), bytes(&close))?;
        std::fs::write(dir.join("open.f64"), bytes(&open))?;
        std::fs::write(dir.join("signals.i8"), targets.iter().map(|&t| t as u8).collect::<Vec<u8>>())?;
        std::fs::write(dir.join("shape.txt"), format!("{DAYS} {TICKERS}\n"))?;
    }
    let s = Settings { commission_bps: 10.0, slippage_bps: 5.0, initial_cash: 1_000_000.0 };
    let market = Market { dates: &dates, tickers: TICKERS, close: &close, open: Some(&open) };
    let cells = (TICKERS * DAYS) as f64;
    println!("tickers  days  run (s)  bar-tickers/s  trades  stats (s)  total bar-tickers/s  final equity");
    for _ in 0..3 {
        let started = Instant::now();
        let out = backtest::run(&market, &targets, &s);
        let run_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let all: Vec<_> = out.trades.iter().collect();
        let mut n_stats = stats::compute(&dates, &out.equity, &out.benchmark, &all).len();
        let mut by_ticker = vec![Vec::new(); TICKERS];
        for t in &out.trades {
            by_ticker[t.ticker].push(t);
        }
        for (k, mine) in by_ticker.iter().enumerate() {
            let eq: Vec<f64> = (0..DAYS).map(|t| out.sleeve_equity[t * TICKERS + k]).collect();
            let bh: Vec<f64> = (0..DAYS).map(|t| out.sleeve_benchmark[t * TICKERS + k]).collect();
            n_stats += stats::compute(&dates, &eq, &bh, mine).len();
        }
        let stats_s = started.elapsed().as_secs_f64();
        println!(
            "{TICKERS}  {DAYS}  {run_s:.3}  {:.0}  {}  {stats_s:.3}  {:.0}  {:.2} ({n_stats} statistics)",
            cells / run_s,
            out.trades.len(),
            cells / (run_s + stats_s),
            out.equity[DAYS - 1]
        );
    }
    Ok(())
}
