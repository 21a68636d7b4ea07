//! Writing query results: a table on a terminal, CSV, JSON, from a stream of Arrow record batches.
//!
//! Every format streams: CSV and JSON write each batch as it arrives, and the table keeps only the
//! rows it shows (and stops reading a result past `TABLE_READ_ROWS`), so a result of any size
//! runs in bounded memory.

use std::collections::VecDeque;
use std::io::Write;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, ContentArrangement, Table};
use duckdb::arrow::array::RecordBatch;
use duckdb::arrow::datatypes::SchemaRef;
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

/// Rows a table shows at each end of a long result (DuckDB's CLI does the same).
const TABLE_EDGE_ROWS: usize = 20;

/// Rows a table reads at most: past them it shows the first rows and stops (reading 1,000,000
/// rows costs about 0.1 s; the 18.5 million of a year's `trial_outcomes`, 2 to 2.5 s).
const TABLE_READ_ROWS: u64 = 1_000_000;

pub type Batches<'a> = &'a mut dyn Iterator<Item = duckdb::Result<RecordBatch>>;

/// Writes a streamed result; returns the number of rows.
pub fn write(format: Format, schema: SchemaRef, batches: Batches, out: &mut dyn Write) -> anyhow::Result<Rows> {
    match format {
        Format::Table => write_table(schema, batches, out),
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            // An empty first batch writes the header even when the result has no rows.
            w.write(&nested_as_text(&RecordBatch::new_empty(schema))?)?;
            let mut rows = 0;
            for batch in batches {
                let batch = batch.context("reading the query result")?;
                rows += batch.num_rows() as u64;
                w.write(&nested_as_text(&batch)?)?;
            }
            Ok(Rows::Exactly(rows))
        }
        Format::Json => {
            let mut rows = 0;
            {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::JsonArray>(&mut *out);
                for batch in batches {
                    let batch = batch.context("reading the query result")?;
                    rows += batch.num_rows() as u64;
                    w.write(&batch)?;
                }
                // Writes "[]" for an empty result.
                w.finish()?;
            }
            writeln!(out)?;
            Ok(Rows::Exactly(rows))
        }
        Format::Parquet => anyhow::bail!("parquet is written to a file (write_parquet), not to a stream"),
    }
}

/// Writes a streamed result to a Parquet file (Snappy-compressed, as DuckDB writes it); returns
/// the number of rows.
pub fn write_parquet(schema: SchemaRef, batches: Batches, file: std::fs::File) -> anyhow::Result<Rows> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch.context("reading the query result")?;
        rows += batch.num_rows() as u64;
        w.write(&batch)?;
    }
    w.close()?;
    Ok(Rows::Exactly(rows))
}

/// CSV has no lists, structs or maps: such a column is written as its text, `[1, 2]` as DuckDB's
/// own CLI writes it.
fn nested_as_text(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    use duckdb::arrow::array::{ArrayRef, StringArray};
    use duckdb::arrow::datatypes::{DataType, Field, Schema};
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let f = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let text: StringArray =
                (0..column.len()).map(|r| column.is_valid(r).then(|| f.value(r).to_string())).collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(std::sync::Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)?)
}

fn format_rows(batch: &RecordBatch, rows: impl Iterator<Item = usize>) -> anyhow::Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<ArrayFormatter> =
        batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<_, _>>()?;
    Ok(rows.map(|r| formatters.iter().map(|f| f.value(r).to_string()).collect()).collect())
}

/// A result's first `n` rows, out of `batches` in order.
fn first_rows(batches: &[RecordBatch], n: usize) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    for batch in batches {
        let take = (n - rows.len()).min(batch.num_rows());
        rows.extend(format_rows(batch, 0..take)?);
    }
    Ok(rows)
}

/// How many rows a table was drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// The whole result, counted.
    Exactly(u64),
    /// A table stopped reading past `TABLE_READ_ROWS`: the result has more than this many.
    MoreThan(u64),
}

impl std::fmt::Display for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Rows::Exactly(n) => write!(f, "{n}"),
            Rows::MoreThan(n) => write!(f, "more than {n}"),
        }
    }
}

/// Writes the table: every row of a result up to `TABLE_READ_ROWS` is read and counted and its
/// first and last `TABLE_EDGE_ROWS` shown; a longer result shows its first rows and stops reading
/// (DuckDB's Python client stops at 10,000 for the same reason: millions of rows cost seconds to
/// read and show nothing more).
fn write_table(schema: SchemaRef, batches: Batches, out: &mut dyn Write) -> anyhow::Result<Rows> {
    let edge = TABLE_EDGE_ROWS;
    // The batches holding the first 2 x edge rows, and slices holding the last edge rows.
    let (mut first, mut first_len) = (Vec::new(), 0);
    let (mut last, mut last_len) = (VecDeque::<RecordBatch>::new(), 0);
    let mut total = 0u64;
    for batch in batches {
        let batch = batch.context("reading the query result")?;
        let n = batch.num_rows();
        if n == 0 {
            continue;
        }
        total += n as u64;
        if total > TABLE_READ_ROWS {
            return show_table(&schema, first_rows(&first, 2 * edge)?, &[], Rows::MoreThan(TABLE_READ_ROWS), out);
        }
        if first_len < 2 * edge {
            first_len += n;
            first.push(batch.clone());
        }
        let keep = n.min(edge);
        last.push_back(batch.slice(n - keep, keep));
        last_len += keep;
        while last_len - last.front().map_or(0, |b| b.num_rows()) >= edge {
            last_len -= last.pop_front().map_or(0, |b| b.num_rows());
        }
    }
    let total_rows = total as usize;
    if total_rows <= 2 * edge {
        return show_table(&schema, first_rows(&first, total_rows)?, &[], Rows::Exactly(total), out);
    }
    let mut tail = Vec::new();
    for batch in &last {
        tail.extend(format_rows(batch, 0..batch.num_rows())?);
    }
    let tail = tail.split_off(tail.len() - edge);
    show_table(&schema, first_rows(&first, edge)?, &tail, Rows::Exactly(total), out)
}

/// Prints `head`, then a row of `…` and `tail` when rows were left out, and the count.
fn show_table(
    schema: &SchemaRef,
    head: Vec<Vec<String>>,
    tail: &[Vec<String>],
    rows: Rows,
    out: &mut dyn Write,
) -> anyhow::Result<Rows> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(schema.fields().iter().map(|f| Cell::new(f.name())));
    let numeric: Vec<bool> = schema.fields().iter().map(|f| f.data_type().is_numeric()).collect();
    let add =
        |table: &mut Table, row: &[String]| {
            table.add_row(row.iter().zip(&numeric).map(|(v, &num)| {
                Cell::new(v).set_alignment(if num { CellAlignment::Right } else { CellAlignment::Left })
            }));
        };
    let shown = head.len() + tail.len();
    let all_shown = rows == Rows::Exactly(shown as u64);
    for row in &head {
        add(&mut table, row);
    }
    if !all_shown {
        table.add_row(schema.fields().iter().map(|_| Cell::new("…")));
    }
    for row in tail {
        add(&mut table, row);
    }
    writeln!(out, "{table}")?;
    match rows {
        Rows::Exactly(1) if all_shown => writeln!(out, "1 row")?,
        Rows::Exactly(n) if all_shown => writeln!(out, "{n} rows")?,
        Rows::Exactly(n) => writeln!(out, "{n} rows ({shown} shown; --format csv or --output FILE for all)")?,
        Rows::MoreThan(n) => writeln!(
            out,
            "more than {n} rows (the first {shown} shown; --format csv or --output FILE for all, \
             SELECT count(*) FROM (...) to count them)"
        )?,
    }
    Ok(rows)
}

/// Output held until the database is released: in memory up to `MEMORY` bytes, then in an
/// anonymous temporary file. `hptune query | less` reads the whole result, lets go of the file,
/// and only then waits on the pager, so a running study is never blocked by a reader.
pub struct Spool {
    memory: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Spool {
    /// Bytes kept in memory before the spool moves to a temporary file.
    pub const MEMORY: usize = 64 << 20;

    pub fn new() -> Self {
        Self { memory: Vec::new(), file: None }
    }

    /// Writes everything spooled to `out`.
    pub fn copy_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        match self.file {
            None => out.write_all(&self.memory),
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                std::io::copy(&mut std::io::BufReader::new(file), out).map(drop)
            }
        }
    }
}

impl Default for Spool {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > Self::MEMORY {
            let mut file = std::io::BufWriter::new(tempfile::tempfile()?);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(f) => f.write(buf),
            None => {
                self.memory.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

/// Bytes for people: `1.3 MB`, `512 B`.
pub fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}
