//! `hptune data`: import, generate, list and describe datasets.

use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};

use crate::data::{self, synth};
use crate::store::{Imported, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Import a long CSV (date,ticker,close[,open,high,low,volume]) or a folder of per-ticker CSVs
    /// (Date,Open,High,Low,Close,Adj Close,Volume; ticker = file name).
    Import {
        path: PathBuf,
        /// Dataset name (default: the file or folder name without extension).
        #[arg(long)]
        name: Option<String>,
        /// Canonical ticker order, comma-separated (default: order of first appearance; file
        /// name order for a folder).
        #[arg(long, value_delimiter = ',')]
        tickers: Option<Vec<String>>,
    },
    /// List the datasets in the database.
    List,
    /// Describe one dataset: tickers in order, date span, rows, missing cells per ticker.
    Show { name: String },
    /// Generate a reproducible synthetic panel (correlated random walks, optionally with a
    /// planted next-day dependency) and store it, or write it as CSV with --csv.
    Synth {
        #[arg(long)]
        tickers: usize,
        #[arg(long)]
        days: usize,
        #[arg(long)]
        seed: u64,
        /// Strength of the planted dependency: tomorrow's direction repeats today's with
        /// probability Phi(signal) (0 = pure random walk, 0.25 = 59.9%).
        #[arg(long, default_value_t = 0.0)]
        signal: f64,
        /// Dataset name (default: synth_<tickers>x<days>_seed<seed>[_signal<x>]).
        #[arg(long)]
        name: Option<String>,
        /// Write the panel to this long CSV instead of storing it.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Import { path, name, tickers } => import(store, path, name, tickers),
        DataCommand::List => list(store),
        DataCommand::Show { name } => show(store, &name),
        DataCommand::Synth { tickers, days, seed, signal, name, csv } => {
            synth(store, synth::SynthSpec { tickers, days, seed, signal }, name, csv)
        }
    }
}

fn import(store: &Store, path: PathBuf, name: Option<String>, tickers: Option<Vec<String>>) -> anyhow::Result<()> {
    let name = match name {
        Some(n) => n,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .with_context(|| format!("cannot name a dataset after {}; pass --name", path.display()))?,
    };
    // Parse and validate before touching the database, so the file is held only to write.
    let mut panel = data::read_path(&path)?;
    if let Some(order) = tickers {
        panel = panel.reorder(&order)?;
    }
    let source = std::fs::canonicalize(&path).unwrap_or(path).display().to_string();
    report(store.import_panel(&name, &source, &panel)?, &name, &panel);
    Ok(())
}

fn list(store: &Store) -> anyhow::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "name",
        "id",
        "tickers",
        "first date",
        "last date",
        "dates",
        "rows",
        "missing",
        "fields",
    ]);
    for d in store.datasets()? {
        let mut tickers = d.tickers.iter().take(6).cloned().collect::<Vec<_>>().join(" ");
        if d.tickers.len() > 6 {
            tickers = format!("{} ({} more) ", tickers, d.tickers.len() - 6);
        }
        table.add_row(vec![
            d.name,
            d.dataset_id,
            format!("{}: {tickers}", d.tickers.len()),
            d.first_date.to_string(),
            d.last_date.to_string(),
            d.n_dates.to_string(),
            d.rows.to_string(),
            d.missing_cells.to_string(),
            (if d.has_ohlcv { "ohlcv" } else { "close" }).to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn show(store: &Store, name: &str) -> anyhow::Result<()> {
    let info = store.dataset(name)?;
    let coverage = store.ticker_coverage(name)?;
    println!("dataset       {} ({})", info.name, info.dataset_id);
    println!("content hash  {}", info.content_hash);
    println!("source        {}", info.source);
    println!("fields        {}", if info.has_ohlcv { "open, high, low, close, volume" } else { "close" });
    println!("dates         {} .. {} ({} trading days)", info.first_date, info.last_date, info.n_dates);
    println!("rows          {} ({} missing (date, ticker) cells)", info.rows, info.missing_cells);
    println!("tickers       {} in order: {}", info.tickers.len(), info.tickers.join(" "));
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "#",
        "ticker",
        "first date",
        "last date",
        "rows",
        "missing dates",
    ]);
    for (i, c) in coverage.iter().enumerate() {
        table.add_row(vec![
            i.to_string(),
            c.ticker.clone(),
            c.first_date.to_string(),
            c.last_date.to_string(),
            c.rows.to_string(),
            c.missing_dates.to_string(),
        ]);
    }
    for col in [0, 4, 5] {
        table.column_mut(col).unwrap().set_cell_alignment(CellAlignment::Right);
    }
    println!("{table}");
    Ok(())
}

fn synth(store: &Store, spec: synth::SynthSpec, name: Option<String>, csv: Option<PathBuf>) -> anyhow::Result<()> {
    if let Some(path) = &csv {
        crate::files::refuse_database(path, store.path(), "--csv")?;
    }
    let panel = synth::generate(&spec)?;
    match csv {
        Some(path) => {
            let mut bytes = Vec::new();
            data::write_long_csv(&panel, &mut bytes)?;
            crate::files::write_atomic(&path, &bytes)?;
            println!(
                "wrote {} rows ({} tickers x {} days) to {}",
                panel.bars.len(),
                spec.tickers,
                spec.days,
                path.display()
            );
        }
        None => {
            let name = name.unwrap_or_else(|| spec.default_name());
            let source = format!(
                "synth --tickers {} --days {} --seed {} --signal {}",
                spec.tickers, spec.days, spec.seed, spec.signal
            );
            report(store.import_panel(&name, &source, &panel)?, &name, &panel);
        }
    }
    Ok(())
}

fn report(outcome: Imported, name: &str, panel: &data::Panel) {
    match outcome {
        Imported::New { dataset_id } => println!(
            "imported {name} ({dataset_id}): {} tickers, {} dates from {} to {}, {} rows",
            panel.tickers.len(),
            panel.n_dates(),
            panel.first_date(),
            panel.last_date(),
            panel.bars.len()
        ),
        Imported::AlreadyPresent { dataset_id, name: existing } => {
            println!("unchanged: this data is already stored as {existing} ({dataset_id}); nothing added")
        }
    }
}
