//! `hptune query`: views, read-only SQL, output formats.

use crate::common::{read_only, Env};

#[test]
fn list_names_every_view_with_its_description() {
    let env = Env::new();
    let out = env.ok(&["query", "--list"]);
    for v in hptune::store::VIEWS {
        assert!(out.contains(v.name), "{out}");
        assert!(!v.description().is_empty(), "{} has no description", v.name);
        assert!(out.contains(&v.description()[..20]), "{out}");
    }
}

#[test]
fn a_view_runs_by_name_with_dashes_or_underscores() {
    let env = Env::new();
    let a = env.ok(&["query", "ticker-coverage", "--format", "csv"]);
    let b = env.ok(&["query", "ticker_coverage", "--format", "csv"]);
    assert_eq!(a, b);
    assert!(a.starts_with("dataset,position,ticker,first_date,last_date,rows,missing_dates\n"), "{a}");
    assert_eq!(a.lines().count(), 1 + 20 + 6);
    assert!(a.contains("us6_ohlcv,4,^GSPC,2009-05-22,2017-11-10,2135,0"), "{a}");
    let err = env.fails(&["query", "no_such_view"]);
    assert!(err.contains("no view named 'no_such_view'") && err.contains("--list"), "{err}");
}

#[test]
fn json_output_is_an_array_of_objects() {
    let env = Env::new();
    let out = env.ok(&[
        "query",
        "SELECT t.ticker, t.position FROM dataset_tickers t JOIN datasets d USING (dataset_id) WHERE d.name = 'us6_ohlcv' ORDER BY position",
        "--format",
        "json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let tickers: Vec<&str> = rows.iter().map(|r| r["ticker"].as_str().unwrap()).collect();
    assert_eq!(tickers, ["MSFT", "AMZN", "NVDA", "GOOGL", "^GSPC", "^IXIC"]);
    let empty = env.ok(&["query", "SELECT 1 AS x WHERE false", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&empty).unwrap().len(), 0);
    let empty_csv = env.ok(&["query", "SELECT 1 AS x WHERE false", "--format", "csv"]);
    assert_eq!(empty_csv, "x\n");
}

#[test]
fn writes_are_refused_and_change_nothing() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let before = env.dump();
    for sql in ["DELETE FROM prices", "CREATE TABLE x (a INT)", "DROP VIEW ticker_coverage"] {
        let err = env.fails(&["query", sql]);
        assert!(err.contains("read-only"), "{sql}: {err}");
    }
    assert_eq!(before, env.dump());
}

#[test]
fn parquet_and_csv_files_hold_the_whole_result() {
    let env = Env::new();
    let sql = "SELECT date, ticker, close FROM prices JOIN datasets USING (dataset_id) WHERE name = 'sp500_20_close'";
    let pq = env.path("out.parquet");
    env.ok(&["query", sql, "--format", "parquet", "--output", pq.to_str().unwrap()]);
    let csv = env.path("out.csv");
    env.ok(&["query", sql, "--output", csv.to_str().unwrap()]);
    let conn = read_only(&env.db);
    let (n, total): (i64, f64) = conn
        .query_row(&format!("SELECT count(*), sum(close) FROM read_parquet('{}')", pq.display()), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let expected: (i64, f64) = conn
        .query_row(&format!("SELECT count(*), sum(close) FROM ({sql})"), [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((n, total), expected);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count() as i64, expected.0 + 1);
    assert!(text.starts_with("date,ticker,close\n"));
    let err = env.fails(&["query", sql, "--format", "parquet"]);
    assert!(err.contains("--output"), "{err}");
}

#[test]
fn a_long_table_shows_its_ends_and_counts_the_rest() {
    let env = Env::new();
    let out = env.ok(&["query", "SELECT range AS i FROM range(100000)", "--format", "table"]);
    assert!(out.contains("100000 rows (40 shown"), "{out}");
    assert!(out.contains("│ 19 ") || out.contains("│    19 "), "{out}");
    assert!(out.contains("99999"), "{out}");
    assert!(!out.contains(" 20 │") && !out.contains("│ 99979 "), "{out}");
    let short = env.ok(&["query", "SELECT 42 AS answer", "--format", "table"]);
    assert!(short.contains("42") && short.contains("1 row"), "{short}");
}
