//! `hptune clean`: show what moved-aside outputs and unneeded weights take, and with `--apply`
//! remove them and compact the database file.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use super::TableOrJson;
use crate::output::bytes;
use crate::stages::clean::{self, Plan, Request};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the weights of this many best trials per study and configurations per extended run
    /// (by cross-validated rank).
    #[arg(long, default_value_t = 3, value_name = "N", allow_negative_numbers = true, value_parser = at_least_zero)]
    pub keep_top: usize,
    /// Also remove the weights of every trial and fold of studies created more than DAYS ago.
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true, value_parser = days)]
    pub older_than: Option<u32>,
    /// Remove what is listed and compact the database (without it, nothing is touched).
    #[arg(long)]
    pub apply: bool,
    /// The listing as a table or JSON.
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
}

fn at_least_zero(s: &str) -> Result<usize, String> {
    s.parse::<usize>().map_err(|_| format!("'{s}' is not a whole number of at least 0"))
}

fn days(s: &str) -> Result<u32, String> {
    s.parse::<u32>().map_err(|_| format!("'{s}' is not a whole number of days (0 or more)"))
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    if !store.path().exists() {
        return Err(crate::store::StoreError::NoDatabase(store.path().to_path_buf()).into());
    }
    let req = Request { keep_top: args.keep_top, older_than_days: args.older_than };
    let plan = clean::plan(store, &req)?;
    let applied = if args.apply { Some(clean::apply(store, &req, &plan)?) } else { None };
    if args.format == TableOrJson::Json {
        let out = serde_json::json!({
            "database": store.path(),
            "plan": plan,
            "disk_bytes": plan.disk_bytes(),
            "database_bytes": plan.database_bytes(),
            "applied": applied,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_plan(&plan, args.apply);
    for busy in &plan.busy {
        eprintln!("note: left {} alone: a running hptune process writes into it", busy.display());
    }
    match applied {
        None if !plan.items.is_empty() => println!("nothing removed: run again with --apply to remove it"),
        None => {}
        Some(a) => {
            if let Some(id) = &a.cleanup_id {
                println!(
                    "{id}: removed {} files ({}) and {} of stored weights",
                    a.files_removed,
                    bytes(a.disk_bytes),
                    bytes(a.database_bytes)
                );
            }
            match (a.compacted, a.not_compacted) {
                (Some((before, after)), _) => {
                    println!("compacted {}: {} -> {}", store.path().display(), bytes(before), bytes(after))
                }
                (None, Some(why)) => eprintln!("note: not compacted: {why}"),
                (None, None) => {}
            }
        }
    }
    Ok(())
}

fn print_plan(plan: &Plan, applying: bool) {
    if plan.items.is_empty() {
        println!("nothing to clean: no moved-aside outputs, and every checkpoint's weights are kept");
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "item",
        "why",
        "files",
        "on disk",
        "checkpoints",
        "in database",
    ]);
    for i in &plan.items {
        table.add_row(vec![
            Cell::new(&i.what),
            Cell::new(&i.why),
            Cell::new(i.files).set_alignment(CellAlignment::Right),
            Cell::new(bytes(i.disk_bytes)).set_alignment(CellAlignment::Right),
            Cell::new(i.checkpoints).set_alignment(CellAlignment::Right),
            Cell::new(bytes(i.database_bytes)).set_alignment(CellAlignment::Right),
        ]);
    }
    table.add_row(vec![
        Cell::new("total"),
        Cell::new(""),
        Cell::new(plan.items.iter().map(|i| i.files).sum::<usize>()).set_alignment(CellAlignment::Right),
        Cell::new(bytes(plan.disk_bytes())).set_alignment(CellAlignment::Right),
        Cell::new(plan.items.iter().map(|i| i.checkpoints).sum::<usize>()).set_alignment(CellAlignment::Right),
        Cell::new(bytes(plan.database_bytes())).set_alignment(CellAlignment::Right),
    ]);
    println!("{}", if applying { "removing:" } else { "would remove (nothing is touched without --apply):" });
    println!("{table}");
}
