//! `hptune backtest`: simulate a model on its own tickers after its training data (stage 5), or
//! print its latest signals.

use std::path::PathBuf;

use anyhow::bail;
use chrono::NaiveDate;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::TableOrJson;
use crate::backtest::Mode;
use crate::stages::backtest::{self, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A final_model/ export or a checkpoint folder (checked against its recorded sha256).
    /// Default: the newest final model, else the newest extended model, else the best tuning
    /// checkpoint, else the default configuration trained now.
    #[arg(long)]
    pub model_path: Option<PathBuf>,
    /// Dataset to simulate on (default: the model's). Its tickers are put in the model's order;
    /// a missing one is an error, extra ones are ignored.
    #[arg(long)]
    pub dataset: Option<String>,
    /// First decision day (default: the first day after the model's training data).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start: Option<NaiveDate>,
    /// Last day (default: the last day of the data).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end: Option<NaiveDate>,
    /// Allow --start inside the model's training data; the results are marked in_sample.
    #[arg(long)]
    pub include_training: bool,
    /// long-flat, or long-short.
    #[arg(long, value_enum, default_value_t = Mode::LongFlat)]
    pub mode: Mode,
    /// Up-probability above which a position is long.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    pub threshold: f64,
    /// Commission on every fill, in basis points of its notional.
    #[arg(long, allow_negative_numbers = true, value_parser = super::basis_points, default_value_t = 10.0)]
    pub commission_bps: f64,
    /// Slippage on every fill, in basis points of the price (buys higher, sells lower).
    #[arg(long, allow_negative_numbers = true, value_parser = super::basis_points, default_value_t = 5.0)]
    pub slippage_bps: f64,
    /// Starting capital, split equally across the tickers.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10_000.0)]
    pub cash: f64,
    /// Output folder (an earlier one is moved aside with a timestamp).
    #[arg(long, default_value = crate::layout::BACKTEST_DIR)]
    pub out: PathBuf,
    /// Instead of a backtest, record and print the latest signal per ticker.
    #[arg(long)]
    pub generate_signals: bool,
    /// Signals as a table or JSON (with --generate-signals).
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database_folder(&args.out, store.path(), "--out")?;
    if args.generate_signals {
        let (_, rows) =
            backtest::signals(store, args.model_path.as_deref(), args.dataset.as_deref(), args.mode, args.threshold)?;
        match args.format {
            TableOrJson::Json => {
                let list: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({"date": r.date.to_string(), "ticker": r.ticker,
                                                "probability": r.probability, "position": r.position})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            }
            TableOrJson::Table => {
                let mut table = Table::new();
                table.load_preset(UTF8_FULL_CONDENSED).set_header(["date", "ticker", "probability", "position"]);
                for r in &rows {
                    let pos = match r.position {
                        1 => "long",
                        -1 => "short",
                        _ => "flat",
                    };
                    table.add_row(vec![
                        r.date.to_string(),
                        r.ticker.clone(),
                        format!("{:.4}", r.probability),
                        pos.into(),
                    ]);
                }
                println!("{table}");
            }
        }
        return Ok(());
    }
    if args.format != TableOrJson::Table {
        bail!("--format applies to --generate-signals");
    }
    let outcome = backtest::run(
        store,
        &Request {
            model_path: args.model_path,
            dataset: args.dataset,
            start: args.start,
            end: args.end,
            include_training: args.include_training,
            mode: args.mode,
            threshold: args.threshold,
            commission_bps: args.commission_bps,
            slippage_bps: args.slippage_bps,
            initial_cash: args.cash,
            out_dir: args.out.clone(),
        },
    )?;
    if let Some(old) = &outcome.moved_aside {
        println!("kept the previous {} as {}", args.out.display(), old.display());
    }
    let b = store.backtest(&outcome.backtest_id)?;
    println!(
        "{}: {} on {} ({} tickers), {} .. {}{}, {} fills, {} bps commission, {} bps slippage",
        b.backtest_id,
        b.mode,
        outcome.dataset,
        b.tickers.len(),
        b.start_date,
        b.end_date,
        if b.in_sample { " (IN-SAMPLE: overlaps the training data)" } else { " (out of sample)" },
        b.fill,
        b.commission_bps,
        b.slippage_bps
    );
    println!("direction accuracy {:.2}% of {} predictions", 100.0 * b.accuracy.unwrap_or(f64::NAN), b.n_predictions);
    print_stats(store, &outcome.backtest_id)?;
    println!("wrote {}/: stats.json, trades.csv, equity_curve.csv, equity_curve.png", args.out.display());
    println!("next: hptune query pipeline_history (this run beside earlier ones)");
    Ok(())
}

/// The portfolio's statistics beside buy and hold.
pub fn print_stats(store: &Store, id: &str) -> anyhow::Result<()> {
    let stats = store.backtest_stats(id)?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["statistic", "model", "buy & hold", "repeat-today rule"]);
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    let other = |strategy: &str, name: &str| {
        stats.iter().find(|o| o.scope == "portfolio" && o.strategy == strategy && o.name == name).and_then(|o| o.value)
    };
    for s in stats.iter().filter(|s| s.scope == "portfolio" && s.strategy == "model") {
        table.add_row(vec![
            s.name.clone(),
            fmt(s.value),
            fmt(other("buy_and_hold", &s.name)),
            fmt(other("repeat_today", &s.name)),
        ]);
    }
    println!("{table}");
    let value = |strategy: &str, name: &str| other(strategy, name).unwrap_or(f64::NAN);
    let (model, rule) = (value("model", "Return [%]"), value("repeat_today", "Return [%]"));
    let verdict = if model > rule { "beats" } else { "does not beat" };
    println!(
        "the model {verdict} the repeat-today rule on the same days and costs (return {model:.2}% against {rule:.2}%); \
         PSR {:.2}, deflated for {:.0} trials {:.2}",
        value("model", "Probabilistic Sharpe Ratio"),
        value("model", "Trials Deflated For"),
        value("model", "Deflated Sharpe Ratio"),
    );
    Ok(())
}
