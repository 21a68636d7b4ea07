//! Market data panels: the in-memory form of a dataset, its parsers and its synthetic generator.
//!
//! A [`Panel`] is a set of daily bars over tickers in a canonical order. This module reads and
//! validates them (`csv_source`), generates them (`synth`) and hashes them; it never touches the
//! database, which is the store's job.

mod csv_source;
pub mod synth;

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

pub use csv_source::{read_long_csv, read_path, write_long_csv, SHIPPED};

/// Why input data was refused. Each names the file and, where there is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("{path}, line {line}: {problem}")]
    Line { path: PathBuf, line: u64, problem: String },
    #[error("{0}")]
    Invalid(String),
}

/// One daily bar. `ticker` indexes [`Panel::tickers`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub date: NaiveDate,
    pub ticker: u32,
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: f64,
    pub volume: Option<f64>,
}

/// A validated panel: bars sorted by (date, ticker position), at most one per (date, ticker).
#[derive(Debug, Clone)]
pub struct Panel {
    pub tickers: Vec<String>,
    pub bars: Vec<Bar>,
}

impl Panel {
    /// Builds a panel, sorting the bars and refusing duplicates and empty input.
    pub fn new(tickers: Vec<String>, mut bars: Vec<Bar>) -> Result<Self, DataError> {
        if bars.is_empty() {
            return Err(DataError::Invalid("the data has no rows".into()));
        }
        bars.sort_by_key(|b| (b.date, b.ticker));
        if let Some(w) = bars.windows(2).find(|w| (w[0].date, w[0].ticker) == (w[1].date, w[1].ticker)) {
            return Err(DataError::Invalid(format!(
                "duplicate row for {} on {}",
                tickers[w[0].ticker as usize], w[0].date
            )));
        }
        Ok(Self { tickers, bars })
    }

    /// Keeps the tickers of `order`, in that order (a model's tickers); returns the panel and the
    /// tickers it left out. A ticker of `order` that the panel lacks is an error naming them all.
    pub fn select(self, order: &[String]) -> Result<(Self, Vec<String>), DataError> {
        let missing: Vec<&str> = order.iter().filter(|t| !self.tickers.contains(t)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(DataError::Invalid(format!(
                "the data lacks {} of the model's tickers: {} (the model's tickers, in order: {})",
                missing.len(),
                missing.join(", "),
                order.join(", ")
            )));
        }
        let extra: Vec<String> = self.tickers.iter().filter(|t| !order.contains(t)).cloned().collect();
        let new_pos: Vec<Option<u32>> =
            self.tickers.iter().map(|t| order.iter().position(|o| o == t).map(|p| p as u32)).collect();
        let bars =
            self.bars.into_iter().filter_map(|b| new_pos[b.ticker as usize].map(|p| Bar { ticker: p, ..b })).collect();
        Ok((Panel::new(order.to_vec(), bars)?, extra))
    }

    /// Puts the tickers in `order`, which must name exactly the panel's tickers.
    pub fn reorder(mut self, order: &[String]) -> Result<Self, DataError> {
        let have: BTreeSet<&str> = self.tickers.iter().map(String::as_str).collect();
        let want: BTreeSet<&str> = order.iter().map(String::as_str).collect();
        let missing: Vec<_> = have.difference(&want).copied().collect();
        let unknown: Vec<_> = want.difference(&have).copied().collect();
        if !missing.is_empty() || !unknown.is_empty() || want.len() != order.len() {
            return Err(DataError::Invalid(format!(
                "--tickers must list each ticker of the data exactly once; missing: [{}], not in the data: [{}]",
                missing.join(","),
                unknown.join(",")
            )));
        }
        let new_pos: Vec<u32> =
            self.tickers.iter().map(|t| order.iter().position(|o| o == t).unwrap() as u32).collect();
        for bar in &mut self.bars {
            bar.ticker = new_pos[bar.ticker as usize];
        }
        self.bars.sort_by_key(|b| (b.date, b.ticker));
        self.tickers = order.to_vec();
        Ok(self)
    }

    pub fn n_dates(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for b in &self.bars {
            if last != Some(b.date) {
                n += 1;
                last = Some(b.date);
            }
        }
        n
    }

    pub fn first_date(&self) -> NaiveDate {
        self.bars[0].date
    }

    pub fn last_date(&self) -> NaiveDate {
        self.bars[self.bars.len() - 1].date
    }

    /// True when every bar has open, high, low and volume.
    pub fn has_ohlcv(&self) -> bool {
        self.bars.iter().all(|b| b.open.is_some() && b.high.is_some() && b.low.is_some() && b.volume.is_some())
    }

    /// sha256 of the tickers in order and every bar: the dataset's identity.
    /// Independent of row order in the source file, dependent on ticker order (part of a model).
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"hptune-dataset-v1\n");
        for t in &self.tickers {
            h.update(t.as_bytes());
            h.update(b"\n");
        }
        let mut buf = Vec::with_capacity(64);
        for b in &self.bars {
            buf.clear();
            let days = b.date.signed_duration_since(NaiveDate::default()).num_days() as i32;
            buf.extend_from_slice(&days.to_le_bytes());
            buf.extend_from_slice(&b.ticker.to_le_bytes());
            for v in [b.open, b.high, b.low, Some(b.close), b.volume] {
                match v {
                    Some(x) => {
                        buf.push(1);
                        buf.extend_from_slice(&x.to_bits().to_le_bytes());
                    }
                    None => buf.push(0),
                }
            }
            h.update(&buf);
        }
        crate::ids::hex(&h.finalize())
    }
}
