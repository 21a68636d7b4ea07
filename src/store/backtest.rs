//! Backtests (settings, trades, daily equity, statistics), signals, and the models a backtest
//! can pick.

use chrono::NaiveDate;
use duckdb::{params, OptionalExt};

use super::{CheckpointRecord, Result, Store, StoreError};
use crate::backtest::Mode;
use crate::states::{ModelSource, Side};

#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRecord {
    pub backtest_id: String,
    pub run_id: String,
    pub checkpoint_id: String,
    pub model_source: ModelSource,
    pub dataset_id: String,
    pub tickers: Vec<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub first_unseen: Option<NaiveDate>,
    pub in_sample: bool,
    pub mode: Mode,
    pub threshold: f64,
    pub fill: String,
    pub commission_bps: f64,
    pub slippage_bps: f64,
    pub initial_cash: f64,
    pub accuracy: Option<f64>,
    pub n_predictions: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TradeRow {
    pub ticker: String,
    pub side: Side,
    pub entry_date: NaiveDate,
    pub entry_price: f64,
    pub exit_date: NaiveDate,
    pub exit_price: f64,
    pub size: f64,
    pub pnl: f64,
    pub return_pct: f64,
    pub commission: f64,
    pub slippage: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EquityRow {
    pub date: NaiveDate,
    pub equity: f64,
    pub benchmark: f64,
    pub drawdown_pct: f64,
    pub positions: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatRow {
    pub scope: String,
    pub strategy: String,
    pub position: i32,
    pub name: String,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignalRow {
    pub date: NaiveDate,
    pub ticker: String,
    pub probability: f64,
    pub position: i32,
}

/// Which fold of which extended run a picked checkpoint comes from.
#[derive(Debug, Clone)]
pub struct FoldPick {
    pub extended_run_id: String,
    pub trial_number: usize,
    pub fold: usize,
}

impl Store {
    /// Records a backtest whole, in one transaction.
    pub fn record_backtest(
        &self,
        b: &BacktestRecord,
        trades: &[TradeRow],
        equity: &[EquityRow],
        stats: &[StatRow],
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO backtests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP, ?, ?)",
            params![
                b.backtest_id,
                b.run_id,
                b.checkpoint_id,
                b.model_source,
                b.dataset_id,
                serde_json::to_string(&b.tickers).unwrap(),
                b.start_date,
                b.end_date,
                b.first_unseen,
                b.in_sample,
                b.mode,
                b.threshold,
                b.fill,
                b.commission_bps,
                b.slippage_bps,
                b.initial_cash,
                b.accuracy,
                b.n_predictions,
                crate::VERSION,
                super::provenance::record(&tx)?,
            ],
        )?;
        {
            let mut app = tx.appender("backtest_trades")?;
            for (i, t) in trades.iter().enumerate() {
                app.append_row(params![
                    b.backtest_id,
                    i as i32 + 1,
                    t.ticker,
                    t.side,
                    t.entry_date,
                    t.entry_price,
                    t.exit_date,
                    t.exit_price,
                    t.size,
                    t.pnl,
                    t.return_pct,
                    t.commission,
                    t.slippage
                ])?;
            }
            let mut app = tx.appender("backtest_equity")?;
            for e in equity {
                app.append_row(params![b.backtest_id, e.date, e.equity, e.benchmark, e.drawdown_pct, e.positions])?;
            }
            let mut app = tx.appender("backtest_stats")?;
            for s in stats {
                app.append_row(params![b.backtest_id, s.scope, s.strategy, s.position, s.name, s.value])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn latest_backtest(&self) -> Result<Option<String>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT backtest_id FROM backtests ORDER BY created_at DESC, backtest_id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn backtest(&self, id: &str) -> Result<BacktestRecord> {
        let conn = self.reader()?;
        conn.query_row(
            "SELECT backtest_id, run_id, checkpoint_id, model_source, dataset_id, tickers_json, start_date, end_date,
                    first_unseen, in_sample, mode, threshold, fill, commission_bps, slippage_bps, initial_cash,
                    accuracy, n_predictions
             FROM backtests WHERE backtest_id = ?",
            [id],
            |r| {
                let tickers: String = r.get(5)?;
                Ok(BacktestRecord {
                    backtest_id: r.get(0)?,
                    run_id: r.get(1)?,
                    checkpoint_id: r.get(2)?,
                    model_source: r.get(3)?,
                    dataset_id: r.get(4)?,
                    tickers: serde_json::from_str(&tickers).unwrap_or_default(),
                    start_date: r.get(6)?,
                    end_date: r.get(7)?,
                    first_unseen: r.get(8)?,
                    in_sample: r.get(9)?,
                    mode: r.get(10)?,
                    threshold: r.get(11)?,
                    fill: r.get(12)?,
                    commission_bps: r.get(13)?,
                    slippage_bps: r.get(14)?,
                    initial_cash: r.get(15)?,
                    accuracy: r.get(16)?,
                    n_predictions: r.get(17)?,
                })
            },
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no backtest {id} in {}", self.path.display())))
    }

    /// Writes a backtest's trades (`trades`) or daily equity (`equity`) as CSV with DuckDB's
    /// writer, to a temporary file renamed into place.
    pub fn backtest_csv(&self, id: &str, what: &str, path: &std::path::Path) -> anyhow::Result<()> {
        let select = match what {
            "trades" => {
                "SELECT ticker, side, entry_date, entry_price, exit_date, exit_price, size, pnl, return_pct, commission, slippage
                 FROM backtest_trades WHERE backtest_id = $id ORDER BY trade_no"
            }
            _ => "SELECT date, equity, benchmark, drawdown_pct, positions FROM backtest_equity WHERE backtest_id = $id ORDER BY date",
        };
        let tmp = crate::files::partial_path(path);
        let conn = self.reader()?;
        conn.execute(
            &format!(
                "COPY ({}) TO '{}' (HEADER, DELIMITER ',')",
                select.replace("$id", &format!("'{}'", id.replace('\'', "''"))),
                tmp.display().to_string().replace('\'', "''")
            ),
            [],
        )?;
        std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        Ok(())
    }

    pub fn backtest_equity(&self, id: &str) -> Result<Vec<EquityRow>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT date, equity, benchmark, drawdown_pct, positions FROM backtest_equity WHERE backtest_id = ? ORDER BY date",
            )?
            .query_map([id], |r| {
                Ok(EquityRow {
                    date: r.get(0)?,
                    equity: r.get(1)?,
                    benchmark: r.get(2)?,
                    drawdown_pct: r.get(3)?,
                    positions: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    pub fn backtest_stats(&self, id: &str) -> Result<Vec<StatRow>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT s.scope, s.strategy, s.position, s.name, s.value FROM backtest_stats s
                 JOIN backtests b USING (backtest_id)
                 WHERE backtest_id = ?
                 ORDER BY s.scope <> 'portfolio', list_position(json_extract_string(b.tickers_json, '$[*]'), s.scope),
                          s.strategy = 'buy_and_hold', s.position",
            )?
            .query_map([id], |r| {
                Ok(StatRow {
                    scope: r.get(0)?,
                    strategy: r.get(1)?,
                    position: r.get(2)?,
                    name: r.get(3)?,
                    value: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Records a model's latest signals.
    pub fn record_signals(
        &self,
        run_id: &str,
        checkpoint_id: &str,
        dataset_id: &str,
        mode: &str,
        threshold: f64,
        rows: &[SignalRow],
    ) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for s in rows {
            tx.execute(
                "INSERT INTO signals VALUES (current_timestamp::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    run_id,
                    checkpoint_id,
                    dataset_id,
                    s.date,
                    s.ticker,
                    s.probability,
                    s.position,
                    mode,
                    threshold
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest finished final-training run's best checkpoint.
    pub fn newest_final_model(&self) -> Result<Option<CheckpointRecord>> {
        let pick = self.pick_checkpoint(
            "SELECT c.checkpoint_id FROM checkpoints c JOIN training_runs r USING (run_id)
             WHERE r.stage = 'train' AND r.status = 'finished' AND c.role = 'best' AND c.cleanup_id IS NULL
             ORDER BY r.finished_at DESC LIMIT 1",
            |_| Ok(()),
        )?;
        Ok(pick.map(|(c, ())| c))
    }

    /// The newest finished extended run's best configuration (rank 1 in `cv_vs_tuning`) at its
    /// last fold (trained on the most data).
    pub fn newest_extended_best(&self) -> Result<Option<(CheckpointRecord, FoldPick)>> {
        self.pick_checkpoint(
            "SELECT c.checkpoint_id, e.extended_run_id, v.trial_number, f.fold FROM extended_runs e
             JOIN cv_vs_tuning v ON v.extended_run_id = e.extended_run_id AND v.cv_rank = 1
             JOIN cv_folds f ON f.extended_run_id = e.extended_run_id AND f.config_rank = v.tuning_rank
             JOIN checkpoints c ON c.checkpoint_id = f.checkpoint_id
             WHERE e.status = 'finished' AND c.cleanup_id IS NULL
             ORDER BY e.started_at DESC, f.fold DESC LIMIT 1",
            |r| {
                Ok(FoldPick {
                    extended_run_id: r.get(1)?,
                    trial_number: r.get::<_, i64>(2)? as usize,
                    fold: r.get::<_, i64>(3)? as usize,
                })
            },
        )
    }

    /// The best COMPLETE trial of the newest study: the checkpoint, the study and the trial.
    pub fn newest_study_best(&self) -> Result<Option<(CheckpointRecord, (String, usize))>> {
        self.pick_checkpoint(
            "SELECT c.checkpoint_id, t.study_name, t.number FROM trials t JOIN checkpoints c USING (run_id)
             WHERE t.state = 'COMPLETE' AND c.cleanup_id IS NULL AND t.study_name = (SELECT study_name FROM studies ORDER BY created_at DESC LIMIT 1)
             ORDER BY t.value DESC, t.number LIMIT 1",
            |r| Ok((r.get(1)?, r.get::<_, i64>(2)? as usize)),
        )
    }

    /// The checkpoint named in the first column of `sql`'s row, with what `rest` reads of the row.
    fn pick_checkpoint<T>(
        &self,
        sql: &str,
        rest: impl FnOnce(&duckdb::Row) -> duckdb::Result<T>,
    ) -> Result<Option<(CheckpointRecord, T)>> {
        let row: Option<(String, T)> = self.reader()?.query_row(sql, [], |r| Ok((r.get(0)?, rest(r)?))).optional()?;
        row.map(|(id, t)| Ok((self.checkpoint(&id)?, t))).transpose()
    }
}
