//! `hptune query`: named views and ad-hoc read-only SQL, as a table, CSV, JSON or Parquet.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::output::{self, Format};
use crate::store::{self, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A view name (see --list), `best-config` (the current selection; with --format json exactly
    /// best_config.json), or a SQL statement, run on a read-only connection.
    #[arg(required_unless_present = "list")]
    pub query: Option<String>,

    /// List the named views with what each holds.
    #[arg(long, conflicts_with = "query")]
    pub list: bool,

    /// Output format: table on a terminal, csv otherwise. parquet needs --output.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the result to this file instead of standard output.
    #[arg(long, short, conflicts_with = "list")]
    pub output: Option<PathBuf>,
}

pub fn run(args: Args, store: &Store) -> anyhow::Result<()> {
    if args.list {
        return list(args.format);
    }
    if let Some(path) = &args.output {
        crate::files::refuse_database(path, store.path(), "--output")?;
    }
    let text = args.query.unwrap();
    if text == "best-config" && args.format == Some(Format::Json) {
        // Exactly the content of best_config.json.
        let selection = store.selection(None)?.with_context(|| {
            format!("no configuration is selected in {}: run `hptune analyze` first", store.path().display())
        })?;
        return match &args.output {
            Some(path) => std::fs::write(path, &selection.best_config_json)
                .with_context(|| format!("cannot write {}", path.display())),
            None => Ok(std::io::stdout().write_all(selection.best_config_json.as_bytes())?),
        };
    }
    let sql = resolve(&text)?;
    let format = args.format.unwrap_or(if args.output.is_none() && std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });
    match (format, &args.output) {
        (Format::Parquet, None) => bail!("--format parquet writes a file: add --output FILE.parquet"),
        (_, Some(path)) => {
            // Written beside the file and renamed when whole: a refused statement or a failed read
            // leaves an earlier file at that path as it was.
            let partial = crate::files::partial_path(path);
            let written = write_file(store, &sql, format, &partial);
            match written {
                Ok(rows) => {
                    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
                    let what = if format == Format::Table { "a table of " } else { "" };
                    eprintln!("wrote {what}{rows} rows to {}", path.display());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            }
        }
        (_, None) => {
            // The whole result first, then the file is let go, and only then standard output,
            // which may be a pager that waits on the user.
            let mut spool = output::Spool::new();
            store.query_arrow(&sql, |schema, batches| output::write(format, schema, batches, &mut spool))?;
            store::release();
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            spool.copy_to(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// A query's whole result in a file, in any format.
fn write_file(store: &Store, sql: &str, format: Format, path: &std::path::Path) -> anyhow::Result<output::Rows> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    if format == Format::Parquet {
        return store.query_arrow(sql, |schema, batches| output::write_parquet(schema, batches, file));
    }
    let mut out = std::io::BufWriter::new(file);
    let rows = store.query_arrow(sql, |schema, batches| output::write(format, schema, batches, &mut out))?;
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(rows)
}

/// The named views, in any format but Parquet: a table on a terminal, CSV or JSON otherwise.
fn list(format: Option<Format>) -> anyhow::Result<()> {
    use duckdb::arrow::array::{RecordBatch, StringArray};
    use duckdb::arrow::datatypes::{DataType, Field, Schema};
    let format = format.unwrap_or(if std::io::stdout().is_terminal() { Format::Table } else { Format::Csv });
    if format == Format::Parquet {
        bail!("--list prints to standard output: use --format table, csv or json");
    }
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("what it holds", DataType::Utf8, false),
    ]));
    let names = StringArray::from_iter_values(store::VIEWS.iter().map(|v| v.name));
    let descriptions = StringArray::from_iter_values(store::VIEWS.iter().map(|v| v.description()));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(names), std::sync::Arc::new(descriptions)])?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    output::write(format, schema, &mut std::iter::once(Ok(batch)), &mut out)?;
    out.flush()?;
    Ok(())
}

/// A view name becomes `SELECT * FROM view`; anything with a space is SQL. `best-config` is the
/// current selection (`current_selection`); `best_config` is the rule's view.
fn resolve(text: &str) -> anyhow::Result<String> {
    let text = text.trim();
    let text = if text == "best-config" { "current_selection" } else { text };
    if let Some(view) = store::views_find(text) {
        return Ok(view.select());
    }
    if !text.contains(char::is_whitespace) {
        bail!("no view named '{text}'; `hptune query --list` shows the views, or pass a SQL statement");
    }
    Ok(text.to_string())
}
