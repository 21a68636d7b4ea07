//! Stage 5's folder: `stats.json`, `trades.csv`, `equity_curve.csv` and `equity_curve.png`.

use std::path::Path;

use serde_json::json;

use super::{create_dir, value_range, write_json};
use crate::files::write_atomic;
use crate::layout;
use crate::store::{EquityRow, Store};

/// The file and JSON pointer that name the backtest a folder belongs to.
pub const OWNER: (&str, &str) = (layout::STATS, "/backtest_id");

/// Writes a backtest's folder from its rows.
pub fn backtest(store: &Store, id: &str, dir: &Path) -> anyhow::Result<()> {
    let b = store.backtest(id)?;
    let stats = store.backtest_stats(id)?;
    let equity = store.backtest_equity(id)?;
    let dataset = store.dataset_by_id(&b.dataset_id)?;
    create_dir(dir)?;
    let mut scopes = serde_json::Map::new();
    for s in &stats {
        let scope = scopes.entry(s.scope.clone()).or_insert_with(|| json!({}));
        let strategy = scope.as_object_mut().unwrap().entry(s.strategy.clone()).or_insert_with(|| {
            json!({"Start": b.start_date.to_string(), "End": b.end_date.to_string(),
                   "Duration": format!("{} days", (b.end_date - b.start_date).num_days())})
        });
        strategy.as_object_mut().unwrap().insert(s.name.clone(), json!(s.value));
    }
    let portfolio = scopes.remove("portfolio").unwrap_or(json!({}));
    write_json(
        &dir.join(layout::STATS),
        &json!({
            "backtest_id": b.backtest_id,
            "model": {"run_id": b.run_id, "checkpoint_id": b.checkpoint_id, "source": b.model_source},
            "dataset": {"name": dataset.as_ref().map(|d| d.name.clone()), "dataset_id": b.dataset_id},
            "tickers": b.tickers,
            "period": {"start": b.start_date.to_string(), "end": b.end_date.to_string(),
                       "first_unseen": b.first_unseen.map(|d| d.to_string()), "in_sample": b.in_sample},
            "predictions": {"accuracy": b.accuracy, "count": b.n_predictions},
            "settings": {"mode": b.mode, "threshold": b.threshold, "fill": b.fill, "commission_bps": b.commission_bps,
                         "slippage_bps": b.slippage_bps, "initial_cash": b.initial_cash, "allocation": "equal weight per ticker"},
            "strategy": portfolio["model"],
            "benchmark": portfolio["buy_and_hold"],
            "per_ticker": b.tickers.iter().map(|t| (t.clone(), scopes.get(t).cloned().unwrap_or(json!({}))))
                .collect::<serde_json::Map<_, _>>(),
            "hptune_version": crate::VERSION,
        }),
    )?;
    store.backtest_csv(id, "trades", &dir.join(layout::TRADES_CSV))?;
    store.backtest_csv(id, "equity", &dir.join(layout::EQUITY_CSV))?;
    equity_png(&equity, &dir.join(layout::EQUITY_PNG))
}

/// Equity (blue) and buy and hold (grey) above; the drawdown (red) below.
fn equity_png(rows: &[EquityRow], path: &Path) -> anyhow::Result<()> {
    use crate::plot::*;
    let mut canvas = Canvas::new(900, 600);
    let x = (0.0, rows.len().max(2) as f64 - 1.0);
    // Equity in the upper two thirds, the drawdown in the lower third.
    let (lo, hi) = value_range(rows.iter().flat_map(|r| [r.equity, r.benchmark]));
    let top = Frame { x, y: (lo - 0.5 * (hi - lo), hi), margin: 30 };
    let dd_low = rows.iter().map(|r| r.drawdown_pct).fold(0.0, f64::min).min(-1.0);
    let bottom = Frame { x, y: (dd_low, dd_low + (0.0 - dd_low) * 3.2), margin: 30 };
    canvas.axes(&top, 5);
    let mut draw = |frame: &Frame, ys: &dyn Fn(&EquityRow) -> f64, colour| {
        for (i, w) in rows.windows(2).enumerate() {
            let a = canvas.at(frame, i as f64, ys(&w[0]));
            let b = canvas.at(frame, i as f64 + 1.0, ys(&w[1]));
            canvas.line(a, b, colour);
        }
    };
    draw(&bottom, &|_| 0.0, BLACK);
    draw(&bottom, &|r| r.drawdown_pct, RED);
    draw(&top, &|r| r.benchmark, GREY);
    draw(&top, &|r| r.equity, BLUE);
    write_atomic(path, &canvas.png())
}
