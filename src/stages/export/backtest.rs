//! Stage 5's folder: `stats.json`, `trades.csv`, `equity_curve.csv` and `equity_curve.png`.

use std::path::Path;

use serde_json::json;

use super::{create_dir, write_json};
use crate::files::write_atomic;
use crate::layout;
use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLUE, GREY, RED};
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
            "repeat_today_rule": portfolio["repeat_today"],
            "per_ticker": b.tickers.iter().map(|t| (t.clone(), scopes.get(t).cloned().unwrap_or(json!({}))))
                .collect::<serde_json::Map<_, _>>(),
            "hptune_version": crate::VERSION,
        }),
    )?;
    store.backtest_csv(id, "trades", &dir.join(layout::TRADES_CSV))?;
    store.backtest_csv(id, "equity", &dir.join(layout::EQUITY_CSV))?;
    write_atomic(&dir.join(layout::EQUITY_PNG), &equity_chart(id, &equity).png()?)
}

/// Equity and buy and hold above, the drawdown below, over the backtest's dates.
pub(crate) fn equity_chart(id: &str, rows: &[EquityRow]) -> Chart {
    let dates: Vec<_> = rows.iter().map(|r| r.date).collect();
    let series = |f: &dyn Fn(&EquityRow) -> f64| rows.iter().enumerate().map(|(i, r)| (i as f64, f(r))).collect();
    let equity = Panel {
        title: format!("Equity: backtest {id}"),
        x_label: "date".into(),
        y_label: "value".into(),
        x_ticks: XTicks::Dates(dates.clone()),
        series: vec![
            Series::new("buy and hold", GREY, Mark::Line, series(&|r| r.benchmark)),
            Series::new("model", BLUE, Mark::Line, series(&|r| r.equity)),
        ],
    };
    let drawdown = Panel {
        title: "Drawdown of the model from its peak".into(),
        x_label: "date".into(),
        y_label: "drawdown (%)".into(),
        x_ticks: XTicks::Dates(dates),
        series: vec![Series::new("drawdown", RED, Mark::Line, series(&|r| r.drawdown_pct))],
    };
    Chart::new(vec![equity, drawdown], 1, (900, 700))
}
