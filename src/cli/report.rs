//! `hptune report`: write the whole record as one self-contained HTML page.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::stages::report::{self, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The HTML file to write (replaced whole).
    #[arg(long, default_value = crate::layout::REPORT_HTML)]
    pub out: PathBuf,
    /// Show this study and the runs that followed it (its newest extended run, that run's
    /// selection, the selection's final model and that model's backtest); default: the newest
    /// run of each stage.
    #[arg(long)]
    pub study: Option<String>,
    /// The history from this date on (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<NaiveDate>,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    crate::files::refuse_database(&args.out, store.path(), "--out")?;
    if !store.path().exists() {
        return Err(crate::store::StoreError::NoDatabase(store.path().to_path_buf()).into());
    }
    let (path, size) = report::run(store, &Request { out: args.out, study: args.study, since: args.since })?;
    println!("wrote {} ({}): open it in a browser", path.display(), crate::output::bytes(size as u64));
    Ok(())
}
