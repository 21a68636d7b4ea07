//! `hptune diff A B`: two runs of one kind side by side (the `run_facts` view), only what differs
//! unless `--all`.

use anyhow::bail;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde_json::json;

use super::TableOrJson;
use crate::store::{FactPair, Store, DIFF_KINDS};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Two ids of one kind: selections (pipelines), studies, extended runs, final models
    /// (train-...) or backtests.
    #[arg(value_name = "ID", num_args = 0..=2)]
    pub ids: Vec<String>,
    /// `--last 2`: the two newest pipelines (selections), older first.
    #[arg(long, value_name = "2", conflicts_with = "ids", value_parser = two)]
    pub last: Option<usize>,
    /// Every fact, also those that are the same.
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = TableOrJson::Table)]
    pub format: TableOrJson,
}

fn two(s: &str) -> Result<usize, String> {
    match s {
        "2" => Ok(2),
        _ => Err(format!("'{s}': diff compares two runs, so --last takes 2 (the two newest pipelines)")),
    }
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    let ids = match (args.last, args.ids.as_slice()) {
        (Some(n), _) => {
            let ids = store.last_selections(n)?;
            if ids.len() < 2 {
                bail!(
                    "--last 2: {} holds {} pipeline(s) (selections); run `hptune pipeline` or `hptune analyze` again",
                    store.path().display(),
                    ids.len()
                );
            }
            ids
        }
        (None, [a, b]) => vec![a.clone(), b.clone()],
        (None, _) => bail!("give two ids of one kind (`hptune diff A B`), or --last 2 for the two newest pipelines"),
    };
    let (a, b) = (&ids[0], &ids[1]);
    let (kind_a, kind_b) = (store.diff_kind(a)?, store.diff_kind(b)?);
    let words = |k: &str| DIFF_KINDS.iter().find(|(x, _)| *x == k).map_or("run", |(_, w)| *w);
    if kind_a != kind_b {
        bail!("{a} is a {} and {b} a {}: diff compares two of one kind", words(kind_a), words(kind_b));
    }
    let mut facts = store.diff(kind_a, a, b, args.all)?;
    tickers_moved(&mut facts);
    match args.format {
        TableOrJson::Json => {
            let out = json!({"kind": kind_a, "a": a, "b": b, "all": args.all, "facts": facts});
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        TableOrJson::Table => {
            println!("{} {a} (a) against {b} (b):", words(kind_a));
            if facts.is_empty() {
                println!("no differences (--all shows every fact)");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
            table.set_header(["section", "key", "a", "b"]);
            let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            for f in &facts {
                table.add_row([f.section.clone(), f.key.clone(), text(&f.a), text(&f.b)]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

/// When the two runs' tickers differ, which were added and which removed (b against a).
fn tickers_moved(facts: &mut Vec<FactPair>) {
    let Some(f) = facts.iter().find(|f| f.section == "data" && f.key == "tickers" && f.a != f.b) else { return };
    let list = |v: &Option<String>| -> Vec<String> {
        v.as_deref().map(|s| s.split(',').filter(|t| !t.is_empty()).map(String::from).collect()).unwrap_or_default()
    };
    let (a, b) = (list(&f.a), list(&f.b));
    let added: Vec<String> = b.iter().filter(|t| !a.contains(t)).cloned().collect();
    let removed: Vec<String> = a.iter().filter(|t| !b.contains(t)).cloned().collect();
    let at = facts.iter().position(|f| f.section == "data" && f.key == "tickers").unwrap() + 1;
    for (key, list) in [("tickers removed", removed), ("tickers added", added)] {
        if !list.is_empty() {
            facts.insert(at, FactPair { section: "data".into(), key: key.into(), a: None, b: Some(list.join(",")) });
        }
    }
}
