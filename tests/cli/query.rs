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
    // Piped, the list is CSV like any result, and --format json gives one object per view.
    assert!(out.starts_with("view,what it holds\n"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["query", "--list", "--format", "json"])).unwrap();
    let names: Vec<&str> = json.as_array().unwrap().iter().map(|v| v["view"].as_str().unwrap()).collect();
    let expected: Vec<&str> = hptune::store::VIEWS.iter().map(|v| v.name).collect();
    assert_eq!(names, expected);
}

#[test]
fn a_view_runs_by_name_with_dashes_or_underscores() {
    let env = Env::new();
    // query reads a database that exists; any other command creates one.
    env.ok(&["data", "list"]);
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
    // query reads a database that exists; any other command creates one.
    env.ok(&["data", "list"]);
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
    let secret = env.write("secret.csv", "a,b\n1,2\n");
    let secret = secret.to_str().unwrap();
    let before = env.dump();
    let copy_to = format!("COPY prices TO '{}'", env.path("leak.csv").display());
    let select_into = format!("SELECT * FROM read_csv('{secret}')");
    let nested = format!("SELECT (SELECT count(*) FROM read_csv_auto('{secret}')) AS n");
    let attach = format!("ATTACH '{}' AS other", env.path("other.db").display());
    let cases: Vec<(&str, &str)> = vec![
        ("DELETE FROM prices", "not a reading statement"),
        ("CREATE TABLE x (a INT)", "not a reading statement"),
        ("DROP VIEW ticker_coverage", "not a reading statement"),
        (&copy_to, "not a reading statement"),
        (&attach, "not a reading statement"),
        ("INSTALL httpfs", "not a reading statement"),
        ("LOAD httpfs", "not a reading statement"),
        ("SET enable_external_access = true", "not a reading statement"),
        ("SELECT 1; DELETE FROM prices", "one statement per call"),
        (&select_into, "external access"),
        (&nested, "external access"),
        ("SELECT * FROM glob('/etc/*')", "external access"),
    ];
    for (sql, why) in cases {
        let err = env.fails(&["query", sql]);
        assert!(err.contains("refused") && err.to_lowercase().contains(why), "{sql}: {err}");
    }
    // Through --output and Parquet too: the user's SQL reaches no file but the output.
    let out = env.path("out.parquet");
    let err = env.fails(&["query", &select_into, "--format", "parquet", "--output", out.to_str().unwrap()]);
    assert!(err.contains("external access"), "{err}");
    assert!(!env.path("leak.csv").exists() && !env.path("other.db").exists());
    assert_eq!(before, env.dump());
}

#[test]
fn query_on_a_missing_file_names_it_and_creates_nothing() {
    let env = Env::new();
    let err = env.fails(&["query", "SELECT 1 AS x"]);
    assert!(err.contains("no database at") && err.contains("experiments.db"), "{err}");
    assert!(!env.db.exists());
}

#[test]
fn parquet_and_csv_files_hold_the_whole_result() {
    let env = Env::new();
    // query reads a database that exists; any other command creates one.
    env.ok(&["data", "list"]);
    let sql = "SELECT date, ticker, close FROM prices JOIN datasets USING (dataset_id) WHERE name = 'sp500_20_close'";
    let pq = env.path("out.parquet");
    env.ok(&["query", sql, "--format", "parquet", "--output", pq.to_str().unwrap()]);
    let csv = env.path("out.csv");
    env.ok(&["query", sql, "--output", csv.to_str().unwrap()]);
    // The Parquet file as DuckDB itself reads it (Python's duckdb, the peer).
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let read = std::process::Command::new(python)
        .args([
            "-c",
            "import duckdb, sys; print(*duckdb.execute(f\"SELECT count(*), sum(close), min(date)::VARCHAR, \
                       typeof(any_value(ticker)) FROM read_parquet('{sys.argv[1]}')\").fetchone())",
        ])
        .arg(&pq)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    let conn = read_only(&env.db);
    let expected: (i64, f64, String) = conn
        .query_row(&format!("SELECT count(*), sum(close), min(date)::VARCHAR FROM ({sql})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    let got = String::from_utf8(read.stdout).unwrap();
    let fields: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(fields[0].parse::<i64>().unwrap(), expected.0, "{got}");
    assert!((fields[1].parse::<f64>().unwrap() - expected.1).abs() < 1e-6 * expected.1.abs(), "{got}");
    assert_eq!((fields[2], fields[3]), (expected.2.as_str(), "VARCHAR"), "{got}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count() as i64, expected.0 + 1);
    assert!(text.starts_with("date,ticker,close\n"));
    let err = env.fails(&["query", sql, "--format", "parquet"]);
    assert!(err.contains("--output"), "{err}");
}

#[test]
fn a_long_table_shows_its_ends_and_counts_the_rest() {
    let env = Env::new();
    // query reads a database that exists; any other command creates one.
    env.ok(&["data", "list"]);
    let out = env.ok(&["query", "SELECT range AS i FROM range(100000)", "--format", "table"]);
    assert!(out.contains("100000 rows (40 shown"), "{out}");
    assert!(out.contains("│ 19 ") || out.contains("│    19 "), "{out}");
    assert!(out.contains("99999"), "{out}");
    assert!(!out.contains(" 20 │") && !out.contains("│ 99979 "), "{out}");
    // Past a million rows the table stops reading: the first 40 rows, and no count it cannot know.
    let long = env.ok(&["query", "SELECT range AS i FROM range(1000041)", "--format", "table"]);
    assert!(long.contains("more than 1000000 rows (the first 40 shown"), "{long}");
    assert!(long.contains("│ 39 ") || long.contains("│      39 "), "{long}");
    assert!(!long.contains(" 40 │") && !long.contains("1000040"), "{long}");
    let short = env.ok(&["query", "SELECT 42 AS answer", "--format", "table"]);
    assert!(short.contains("42") && short.contains("1 row"), "{short}");
}

#[test]
fn a_closed_standard_output_ends_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    env.ok(&["data", "list"]);
    for args in [&["data", "list"][..], &["query", "SELECT * FROM prices", "--format", "csv"], &["query", "--list"]] {
        let mut child = env
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before hptune writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && stderr.is_empty(), "{args:?}: {stderr}");
        assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{args:?}: {:?}", out.status);
    }
}
