//! Reading price CSVs: a long file (`date,ticker,close[,open,high,low,volume]`) or a folder of
//! per-ticker files in the common `Date,Open,High,Low,Close,Adj Close,Volume` layout.
//!
//! Every problem is reported with the file and line; nothing is half-read.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{Bar, DataError, Panel};

/// A dataset shipped inside the binary, so a fresh database has real data with no import step.
pub struct Shipped {
    pub name: &'static str,
    pub file: &'static str,
    pub csv: &'static str,
}

/// The shipped datasets; the first is the default.
pub const SHIPPED: &[Shipped] = &[
    Shipped {
        name: "sp500_20_close",
        file: "data/sp500_20_close.csv",
        csv: include_str!("../../data/sp500_20_close.csv"),
    },
    Shipped { name: "us6_ohlcv", file: "data/us6_ohlcv.csv", csv: include_str!("../../data/us6_ohlcv.csv") },
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Field {
    Date,
    Ticker,
    Open,
    High,
    Low,
    Close,
    AdjClose,
    Volume,
}

fn field_of(header: &str) -> Option<Field> {
    let key: String =
        header.trim().chars().filter(|c| !matches!(c, ' ' | '_' | '-')).flat_map(char::to_lowercase).collect();
    Some(match key.as_str() {
        "date" => Field::Date,
        "ticker" | "symbol" => Field::Ticker,
        "open" => Field::Open,
        "high" => Field::High,
        "low" => Field::Low,
        "close" => Field::Close,
        "adjclose" => Field::AdjClose,
        "volume" => Field::Volume,
        _ => return None,
    })
}

/// A ticker is kept in lists and file names: non-empty, without commas, quotes or control
/// characters, at most 64 characters.
pub fn check_ticker(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("ticker is empty".into());
    }
    if let Some(c) = t.chars().find(|c| matches!(c, ',' | '"' | '\'') || c.is_control()) {
        return Err(format!("ticker {t:?} contains {c:?}; a ticker has no commas, quotes or control characters"));
    }
    if t.chars().count() > 64 {
        return Err(format!("ticker '{t}' is longer than 64 characters"));
    }
    Ok(())
}

/// Reads a long CSV file or a folder of per-ticker CSVs.
pub fn read_path(path: &Path) -> Result<Panel, DataError> {
    let file_err = |problem: String| DataError::File { path: path.to_path_buf(), problem };
    let meta = std::fs::metadata(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return read_folder(path);
    }
    let file = std::fs::File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    read_long_csv(file, path)
}

/// Reads a long CSV with a `ticker` column. `path` names the source in errors.
pub fn read_long_csv(reader: impl Read, path: &Path) -> Result<Panel, DataError> {
    let mut tickers = Tickers::default();
    let mut bars = Vec::new();
    let mut lines = Vec::new();
    parse(reader, (0, path), None, &mut tickers, &mut bars, &mut lines)?;
    finish(tickers.names, bars, lines, &[path.to_path_buf()])
}

fn read_folder(dir: &Path) -> Result<Panel, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::File { path: dir.to_path_buf(), problem: format!("cannot list folder: {e}") })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")))
        .collect();
    if files.is_empty() {
        return Err(DataError::File {
            path: dir.to_path_buf(),
            problem: "the folder holds no .csv file; expected one file per ticker (TICKER.csv)".into(),
        });
    }
    files.sort();
    let mut tickers = Tickers::default();
    let mut bars = Vec::new();
    let mut lines = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let ticker = file.file_stem().unwrap().to_string_lossy().into_owned();
        check_ticker(&ticker)
            .map_err(|problem| DataError::File { path: file.clone(), problem: format!("the file name: {problem}") })?;
        let f = std::fs::File::open(file)
            .map_err(|e| DataError::File { path: file.clone(), problem: format!("cannot open: {e}") })?;
        parse(f, (index, file), Some(&ticker), &mut tickers, &mut bars, &mut lines)?;
    }
    finish(tickers.names, bars, lines, &files)
}

#[derive(Default)]
struct Tickers {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Tickers {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }
}

/// Parses one file into `bars`, pushing (file index, line) for each bar into `lines`.
fn parse(
    reader: impl Read,
    (file_index, path): (usize, &Path),
    fixed_ticker: Option<&str>,
    tickers: &mut Tickers,
    bars: &mut Vec<Bar>,
    lines: &mut Vec<(usize, u64)>,
) -> Result<(), DataError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
    let cols = columns(&mut rdr, path, fixed_ticker.is_some())?;
    let fixed = fixed_ticker.map(|t| tickers.intern(t));
    let mut record = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(DataError::Line { path: path.to_path_buf(), line, problem: format!("not valid CSV: {e}") });
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let text = |f: Field| cols.get(&f).map(|&i| std::str::from_utf8(&record[i]).unwrap_or("").trim());
        let bar =
            row(text, fixed, tickers).map_err(|problem| DataError::Line { path: path.to_path_buf(), line, problem })?;
        bars.push(bar);
        lines.push((file_index, line));
    }
    Ok(())
}

/// The header's columns, by field; refuses a missing or repeated column.
fn columns(
    rdr: &mut csv::Reader<impl Read>,
    path: &Path,
    fixed_ticker: bool,
) -> Result<HashMap<Field, usize>, DataError> {
    let file_err = |problem: String| DataError::File { path: path.to_path_buf(), problem };
    let line_err = |problem: String| DataError::Line { path: path.to_path_buf(), line: 1, problem };
    let headers = rdr.byte_headers().map_err(|e| file_err(format!("cannot read the header: {e}")))?.clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(file_err("the file is empty; expected a header line such as date,ticker,close".into()));
    }
    let mut cols: HashMap<Field, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = String::from_utf8_lossy(h);
        if let Some(f) = field_of(&name) {
            if cols.insert(f, i).is_some() {
                return Err(line_err(format!("column '{name}' appears twice")));
            }
        }
    }
    let need: &[(Field, &str)] = if fixed_ticker {
        &[(Field::Date, "Date"), (Field::Close, "Close")]
    } else {
        &[(Field::Date, "date"), (Field::Ticker, "ticker"), (Field::Close, "close")]
    };
    let missing: Vec<&str> = need.iter().filter(|(f, _)| !cols.contains_key(f)).map(|(_, n)| *n).collect();
    if !missing.is_empty() {
        let expected = if fixed_ticker {
            "Date,Open,High,Low,Close,Adj Close,Volume"
        } else {
            "date,ticker,close[,open,high,low,volume]"
        };
        let header = String::from_utf8_lossy(headers.as_slice());
        let shown = if header.contains('\u{fffd}') || header.chars().any(char::is_control) {
            "not text (is this a CSV file?)".to_string()
        } else {
            format!("'{}'", header.trim().chars().take(200).collect::<String>())
        };
        return Err(line_err(format!(
            "missing column(s) {}; the header is {shown}, expected {expected}",
            missing.join(", ")
        )));
    }
    Ok(cols)
}

/// One row as a bar; the error says what is wrong with it. `text` gives a column's text, if the
/// file has that column (date, close and, without `fixed`, ticker are known to be there).
fn row<'r>(text: impl Fn(Field) -> Option<&'r str>, fixed: Option<u32>, tickers: &mut Tickers) -> Result<Bar, String> {
    let date_s = text(Field::Date).unwrap_or_default();
    let date = parse_date(date_s).ok_or_else(|| format!("date '{date_s}' is not a date; expected YYYY-MM-DD"))?;
    let ticker = match fixed {
        Some(t) => t,
        None => {
            let t = text(Field::Ticker).unwrap_or_default();
            check_ticker(t)?;
            tickers.intern(t)
        }
    };
    let price = |f: Field, name: &str| -> Result<Option<f64>, String> {
        let Some(s) = text(f) else { return Ok(None) };
        let v: f64 = s.parse().map_err(|_| format!("{name} '{s}' is not a number"))?;
        if !v.is_finite() || v <= 0.0 {
            return Err(format!("{name} must be a positive finite price, got '{s}'"));
        }
        Ok(Some(v))
    };
    let close = price(Field::Close, "close")?.unwrap_or_default();
    let adj = price(Field::AdjClose, "adj close")?;
    let mut open = price(Field::Open, "open")?;
    let mut high = price(Field::High, "high")?;
    let mut low = price(Field::Low, "low")?;
    let volume = match text(Field::Volume) {
        None => None,
        Some(s) => {
            let v: f64 = s.parse().map_err(|_| format!("volume '{s}' is not a number"))?;
            if !v.is_finite() || v < 0.0 {
                return Err(format!("volume must be a finite number >= 0, got '{s}'"));
            }
            Some(v)
        }
    };
    // Adjusted close replaces close; open/high/low are scaled by the same factor so that
    // ratios between them stay meaningful.
    let close = match adj {
        Some(a) => {
            let k = a / close;
            for p in [&mut open, &mut high, &mut low] {
                *p = p.map(|x| x * k);
            }
            a
        }
        None => close,
    };
    Ok(Bar { date, ticker, open, high, low, close, volume })
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // Accept a trailing time ("2020-01-02 00:00:00", "2020-01-02T00:00:00Z"), as exports often carry one.
    let day = match s.as_bytes().get(10) {
        Some(b' ' | b'T') => &s[..10],
        _ => s,
    };
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Checks duplicates with line numbers, then builds the panel.
fn finish(
    tickers: Vec<String>,
    bars: Vec<Bar>,
    lines: Vec<(usize, u64)>,
    files: &[PathBuf],
) -> Result<Panel, DataError> {
    if bars.is_empty() {
        return Err(DataError::File { path: files[0].clone(), problem: "no data rows after the header".into() });
    }
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by_key(|&i| (bars[i].date, bars[i].ticker));
    for w in order.windows(2) {
        let (a, b) = (&bars[w[0]], &bars[w[1]]);
        if (a.date, a.ticker) == (b.date, b.ticker) {
            let (fa, la) = lines[w[0]];
            let (fb, lb) = lines[w[1]];
            let first = if fa == fb { format!("line {la}") } else { format!("{}, line {la}", files[fa].display()) };
            return Err(DataError::Line {
                path: files[fb].clone(),
                line: lb,
                problem: format!(
                    "duplicate row for {} on {} (first seen at {first}); keep one row per (date, ticker)",
                    tickers[a.ticker as usize], a.date
                ),
            });
        }
    }
    Panel::new(tickers, bars)
}

/// Writes a panel as a long CSV (`date,ticker,open,high,low,close,volume`, or `date,ticker,close`
/// for close-only data) that [`read_long_csv`] reads back to the same content hash.
pub fn write_long_csv(panel: &Panel, out: impl std::io::Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let ohlcv = panel.has_ohlcv();
    if ohlcv {
        w.write_record(["date", "ticker", "open", "high", "low", "close", "volume"])?;
    } else {
        w.write_record(["date", "ticker", "close"])?;
    }
    for b in &panel.bars {
        let (date, ticker) = (b.date.to_string(), panel.tickers[b.ticker as usize].as_str());
        if ohlcv {
            let (o, h, l, v) = (b.open.unwrap(), b.high.unwrap(), b.low.unwrap(), b.volume.unwrap());
            let values = [o, h, l, b.close, v].map(|x| x.to_string());
            w.write_record([date.as_str(), ticker].into_iter().chain(values.iter().map(String::as_str)))?;
        } else {
            w.write_record([date.as_str(), ticker, b.close.to_string().as_str()])?;
        }
    }
    w.flush()?;
    Ok(())
}
