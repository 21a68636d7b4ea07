//! Writing query results: a table on a terminal, CSV, JSON, from a stream of Arrow record batches.
//!
//! Every format streams: CSV and JSON write each batch as it arrives, and the table keeps only the
//! first and last rows it shows, so a result of any size runs in bounded memory.

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

pub type Batches<'a> = &'a mut dyn Iterator<Item = duckdb::Result<RecordBatch>>;

/// Writes a streamed result; returns the number of rows.
pub fn write(format: Format, schema: SchemaRef, batches: Batches, out: &mut dyn Write) -> anyhow::Result<u64> {
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
            Ok(rows)
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
            Ok(rows)
        }
        Format::Parquet => anyhow::bail!("parquet is written to a file (write_parquet), not to a stream"),
    }
}

/// Writes a streamed result to a Parquet file (Snappy-compressed, as DuckDB writes it); returns
/// the number of rows.
pub fn write_parquet(schema: SchemaRef, batches: Batches, file: std::fs::File) -> anyhow::Result<u64> {
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
    Ok(rows)
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

fn write_table(schema: SchemaRef, batches: Batches, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut head: Vec<Vec<String>> = Vec::new();
    let mut tail: VecDeque<Vec<String>> = VecDeque::new();
    let mut total = 0u64;
    for batch in batches {
        let batch = batch.context("reading the query result")?;
        let n = batch.num_rows();
        let take_head = (TABLE_EDGE_ROWS - head.len().min(TABLE_EDGE_ROWS)).min(n);
        head.extend(format_rows(&batch, 0..take_head)?);
        let tail_from = take_head.max(n.saturating_sub(TABLE_EDGE_ROWS));
        for row in format_rows(&batch, tail_from..n)? {
            if tail.len() == TABLE_EDGE_ROWS {
                tail.pop_front();
            }
            tail.push_back(row);
        }
        total += n as u64;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(schema.fields().iter().map(|f| Cell::new(f.name())));
    let numeric: Vec<bool> = schema.fields().iter().map(|f| f.data_type().is_numeric()).collect();
    let add =
        |table: &mut Table, row: Vec<String>| {
            table.add_row(row.into_iter().zip(&numeric).map(|(v, &num)| {
                Cell::new(v).set_alignment(if num { CellAlignment::Right } else { CellAlignment::Left })
            }));
        };
    let shown = head.len() + tail.len();
    for row in head {
        add(&mut table, row);
    }
    if (shown as u64) < total {
        table.add_row(schema.fields().iter().map(|_| Cell::new("…")));
    }
    for row in tail {
        add(&mut table, row);
    }
    writeln!(out, "{table}")?;
    if (shown as u64) < total {
        writeln!(out, "{total} rows ({shown} shown; --format csv or --output FILE for all)")?;
    } else {
        writeln!(out, "{total} row{}", if total == 1 { "" } else { "s" })?;
    }
    Ok(total)
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
