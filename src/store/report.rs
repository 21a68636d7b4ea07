//! What `hptune report` reads: the history, and each stage's run with the runs that followed it,
//! as text tables (every value as DuckDB writes it) and as numbers for charts.

use chrono::NaiveDate;
use duckdb::{params, OptionalExt, ToSql};

use super::{Result, Store};

/// A result as text: column names and rows (NULL as an empty cell).
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One selection of the history, for its chart (accuracies and returns in %).
#[derive(Debug, Clone)]
pub struct HistoryPoint {
    pub date: NaiveDate,
    pub best_tuning: Option<f64>,
    pub cv_mean: Option<f64>,
    pub final_val: Option<f64>,
    pub backtest_return: Option<f64>,
    pub buy_and_hold_return: Option<f64>,
}

impl Store {
    /// The `pipeline_history` view since `since` (all when None), oldest first.
    pub fn history_points(&self, since: Option<NaiveDate>) -> Result<Vec<HistoryPoint>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT date, 100 * best_tuning_value, 100 * cv_mean, 100 * final_val_accuracy, backtest_return_pct,
                        buy_and_hold_return_pct
                 FROM pipeline_history WHERE ?::DATE IS NULL OR date >= ?::DATE ORDER BY date, selection_id",
            )?
            .query_map(params![since, since], |r| {
                Ok(HistoryPoint {
                    date: r.get(0)?,
                    best_tuning: r.get(1)?,
                    cv_mean: r.get(2)?,
                    final_val: r.get(3)?,
                    backtest_return: r.get(4)?,
                    buy_and_hold_return: r.get(5)?,
                })
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }

    /// The `pipeline_history` view since `since`, newest first, as a table.
    pub fn history_table(&self, since: Option<NaiveDate>) -> Result<TextTable> {
        self.text_table(
            "SELECT date, dataset, study_name AS study, round(best_tuning_value, 4) AS best_tuning,
                    best_baseline, round(baseline_accuracy, 4) AS baseline, round(p_chance, 3) AS p_chance,
                    round(pbo, 2) AS pbo, round(cv_mean, 4) AS cv_mean, round(cv_std, 4) AS cv_std, model_type,
                    round(final_val_accuracy, 4) AS final_val_accuracy,
                    round(backtest_return_pct, 2) AS backtest_return_pct,
                    round(buy_and_hold_return_pct, 2) AS buy_and_hold_return_pct,
                    selection_id, backtest_id
             FROM pipeline_history WHERE ?::DATE IS NULL OR date >= ?::DATE ORDER BY date DESC, selection_id DESC",
            &[&since, &since],
        )
    }

    /// A study's `limit` best trials (`tuning_leaderboard`).
    pub fn leaderboard_table(&self, study: &str, limit: usize) -> Result<TextTable> {
        self.text_table(
            "SELECT rank, number AS trial, phase, state, round(value, 4) AS value, round(val_loss, 4) AS val_loss,
                    params, pruned_epoch, round(duration_s, 1) AS seconds
             FROM tuning_leaderboard WHERE study_name = ? ORDER BY rank, number LIMIT ?",
            &[&study, &(limit as i64)],
        )
    }

    /// What differs between a selection and the one before it (`pipeline_diff`), and that one's id.
    pub fn changes_table(&self, selection_id: &str) -> Result<(Option<String>, TextTable)> {
        let previous = self.reader()?.query_row(
            "SELECT max(previous_id) FROM pipeline_diff WHERE selection_id = ?",
            [selection_id],
            |r| r.get(0),
        )?;
        let table = self.text_table(
            "SELECT section, key, previous_value AS before, value AS now FROM pipeline_diff WHERE selection_id = ?
             ORDER BY list_position(['settings', 'config', 'data', 'code', 'results', 'tags', 'notes'], section), key",
            &[&selection_id],
        )?;
        Ok((previous, table))
    }

    /// Where the given runs came from (`run_provenance`), in the order given.
    pub fn provenance_table(&self, ids: &[&str]) -> Result<TextTable> {
        let list = sql_list(ids);
        self.text_table(
            &format!(
                "SELECT kind, id, hptune_version AS version,
                        CASE WHEN git_commit = 'unknown' THEN git_commit
                             ELSE git_commit[:12] || CASE WHEN git_commit LIKE '%-dirty' THEN '-dirty' ELSE '' END END AS commit,
                        kernel_path AS kernels, threads, device, host, cpu_model AS cpu, command_line,
                        dataset_hash[:12] AS dataset
                 FROM run_provenance WHERE id IN ({list}) AND kind NOT IN ('trial_run', 'fold_run')
                 ORDER BY list_position([{list}], id)"
            ),
            &[],
        )
    }

    /// The tags and notes of the given runs (`run_annotations`), in the order given.
    pub fn annotations_table(&self, ids: &[&str]) -> Result<TextTable> {
        let list = sql_list(ids);
        self.text_table(
            &format!(
                "SELECT kind, id, tags, note_texts AS notes FROM run_annotations WHERE id IN ({list})
                 ORDER BY list_position([{list}], id)"
            ),
            &[],
        )
    }

    /// An extended run's configurations against their tuning values (`cv_vs_tuning`).
    pub fn cv_table(&self, extended_run_id: &str) -> Result<TextTable> {
        self.text_table(&self.cv_comparison_sql(extended_run_id)?, &[])
    }

    /// A backtest's portfolio statistics, the model beside buy and hold, in backtesting.py's order.
    pub fn backtest_stats_table(&self, backtest_id: &str) -> Result<TextTable> {
        self.text_table(
            "SELECT name AS statistic,
                    round(max(value) FILTER (WHERE strategy = 'model'), 4) AS model,
                    round(max(value) FILTER (WHERE strategy = 'buy_and_hold'), 4) AS buy_and_hold
             FROM backtest_stats WHERE backtest_id = ? AND scope = 'portfolio'
             GROUP BY name ORDER BY min(position)",
            &[&backtest_id],
        )
    }

    /// A backtest's results per ticker, in the model's ticker order.
    pub fn ticker_results_table(&self, backtest_id: &str) -> Result<TextTable> {
        // A statistic of one strategy as a column: rounded to `digits`, or a whole number.
        let stat = |strategy: &str, name: &str, alias: &str, digits: Option<u8>| {
            let value = format!("max(value) FILTER (WHERE strategy = '{strategy}' AND name = '{name}')");
            match digits {
                Some(d) => format!("round({value}, {d}) AS \"{alias}\""),
                None => format!("CAST({value} AS BIGINT) AS \"{alias}\""),
            }
        };
        self.text_table(
            &format!(
                "SELECT s.scope AS ticker, {}, {}, {}, {}, {}, {}
                 FROM backtest_stats s
                 JOIN backtests b USING (backtest_id)
                 WHERE s.backtest_id = ? AND s.scope <> 'portfolio'
                 GROUP BY s.scope, b.tickers_json
                 ORDER BY list_position(json_extract_string(b.tickers_json, '$[*]'), s.scope)",
                stat("model", "Return [%]", "return %", Some(2)),
                stat("buy_and_hold", "Return [%]", "buy & hold %", Some(2)),
                stat("model", "Sharpe Ratio", "Sharpe", Some(2)),
                stat("model", "Max. Drawdown [%]", "max drawdown %", Some(2)),
                stat("model", "# Trades", "trades", None),
                stat("model", "Win Rate [%]", "win rate %", Some(2)),
            ),
            &[&backtest_id],
        )
    }

    /// The first and last `each` trades of a backtest, and how many it has.
    pub fn trades_sample(&self, backtest_id: &str, each: usize) -> Result<(TextTable, usize)> {
        let n: i64 = self.reader()?.query_row(
            "SELECT count(*) FROM backtest_trades WHERE backtest_id = ?",
            [backtest_id],
            |r| r.get(0),
        )?;
        let table = self.text_table(
            "SELECT trade_no, ticker, side, entry_date, round(entry_price, 4) AS entry_price, exit_date,
                    round(exit_price, 4) AS exit_price, round(size, 4) AS size, round(pnl, 2) AS pnl,
                    round(return_pct, 3) AS return_pct
             FROM backtest_trades WHERE backtest_id = ? AND (trade_no <= ? OR trade_no > ? - ?)
             ORDER BY trade_no",
            &[&backtest_id, &(each as i64), &n, &(each as i64)],
        )?;
        Ok((table, n as usize))
    }

    /// The newest selection of an extended run.
    pub fn selection_of(&self, extended_run_id: &str) -> Result<Option<String>> {
        self.newest_id(
            "SELECT selection_id FROM selections WHERE extended_run_id = ? ORDER BY selected_at DESC LIMIT 1",
            extended_run_id,
        )
    }

    /// The newest finished final training of a selection.
    pub fn final_run_of(&self, selection_id: &str) -> Result<Option<String>> {
        self.newest_id(
            "SELECT run_id FROM training_runs WHERE selection_id = ? AND stage = 'train' AND status = 'finished'
             ORDER BY finished_at DESC LIMIT 1",
            selection_id,
        )
    }

    /// The newest backtest of a training run.
    pub fn backtest_of(&self, run_id: &str) -> Result<Option<String>> {
        self.newest_id(
            "SELECT backtest_id FROM backtests WHERE run_id = ? ORDER BY created_at DESC, backtest_id DESC LIMIT 1",
            run_id,
        )
    }

    fn newest_id(&self, sql: &str, key: &str) -> Result<Option<String>> {
        Ok(self.reader()?.query_row(sql, [key], |r| r.get(0)).optional()?)
    }

    /// Runs `sql` and returns every value as text.
    fn text_table(&self, sql: &str, params: &[&dyn ToSql]) -> Result<TextTable> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})"))?;
        let mut rows = stmt.query(params)?;
        let mut out = TextTable::default();
        while let Some(row) = rows.next()? {
            let n = row.as_ref().column_count();
            out.rows.push(
                (0..n)
                    .map(|i| row.get::<_, Option<String>>(i).map(Option::unwrap_or_default))
                    .collect::<duckdb::Result<_>>()?,
            );
        }
        drop(rows);
        out.columns = stmt.column_names();
        Ok(out)
    }
}

/// Ids as a SQL list of quoted strings.
fn sql_list(ids: &[&str]) -> String {
    ids.iter().map(|i| format!("'{}'", i.replace('\'', "''"))).collect::<Vec<_>>().join(", ")
}
