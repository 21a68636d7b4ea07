//! `hptune data`: imports, bad input, synthetic panels.

use crate::common::Env;

const LONG: &str = "date,ticker,close,volume\n\
2020-01-02,BBB,10.5,100\n\
2020-01-02,AAA,20.0,200\n\
2020-01-03,BBB,10.75,110\n\
2020-01-03,AAA,19.5,210\n\
2020-01-06,AAA,19.0,0\n";

#[test]
fn importing_the_same_data_twice_adds_nothing() {
    let env = Env::new();
    let csv = env.write("prices.csv", LONG);
    let first = env.ok(&["data", "import", csv.to_str().unwrap()]);
    assert!(first.contains("imported prices") && first.contains("2 tickers, 3 dates"), "{first}");
    let before = env.dump();

    // Same rows in another order (BBB still first), under another name: the same content.
    let lines: Vec<&str> = LONG.lines().collect();
    let shuffled: Vec<&str> = [0, 1, 5, 3, 4, 2].iter().map(|&i| lines[i]).collect();
    let shuffled = env.write("other.csv", &(shuffled.join("\n") + "\n"));
    let lines_again = env.ok(&["data", "import", shuffled.to_str().unwrap(), "--name", "again"]);
    assert!(lines_again.contains("already stored as prices"), "{lines_again}");
    assert_eq!(before, env.dump());

    // Ticker order is first appearance; one cell (BBB on 2020-01-06) is missing.
    let show = env.ok(&["data", "show", "prices"]);
    assert!(show.contains("in order: BBB AAA"), "{show}");
    assert!(show.contains("rows          5 (1 missing"), "{show}");
}

#[test]
fn ticker_order_can_be_given_and_is_checked() {
    let env = Env::new();
    let csv = env.write("p.csv", LONG);
    let err = env.fails(&["data", "import", csv.to_str().unwrap(), "--tickers", "AAA,CCC"]);
    assert!(err.contains("missing: [BBB]") && err.contains("not in the data: [CCC]"), "{err}");
    env.ok(&["data", "import", csv.to_str().unwrap(), "--tickers", "AAA,BBB"]);
    let order = env.ok(&["query", "SELECT string_agg(ticker, ' ' ORDER BY position) FROM dataset_tickers JOIN datasets USING (dataset_id) WHERE name = 'p'", "--format", "csv"]);
    assert!(order.contains("AAA BBB"), "{order}");
    // A different order is a different dataset: order is part of a model.
    let again = env.ok(&["data", "import", csv.to_str().unwrap(), "--name", "p2"]);
    assert!(again.contains("imported p2"), "{again}");
}

#[test]
fn a_folder_of_per_ticker_files_uses_adjusted_close() {
    let env = Env::new();
    let header = "Date,Open,High,Low,Close,Adj Close,Volume\n";
    env.write(
        "yf/MSFT.csv",
        &format!("{header}2020-01-02,100,110,90,100,50,1000\n2020-01-03,100,104,96,102,51,1200\n"),
    );
    env.write("yf/AAPL.csv", &format!("{header}2020-01-02,10,11,9,10,10,500\n2020-01-03,10,12,10,11,11,600\n"));
    env.write("yf/notes.txt", "ignored");
    let out = env.ok(&["data", "import", env.path("yf").to_str().unwrap()]);
    assert!(out.contains("imported yf") && out.contains("2 tickers, 2 dates"), "{out}");
    let row = env.ok(&["query", "SELECT open, high, low, close, volume FROM prices JOIN datasets USING (dataset_id) WHERE name = 'yf' AND ticker = 'MSFT' ORDER BY date LIMIT 1", "--format", "csv"]);
    assert_eq!(row.lines().nth(1).unwrap(), "50.0,55.0,45.0,50.0,1000.0");
    let show = env.ok(&["data", "show", "yf"]);
    assert!(show.contains("in order: AAPL MSFT") && show.contains("open, high, low, close, volume"), "{show}");
}

/// Each bad input: the file, the expected line (if any), words of the problem.
#[test]
fn bad_input_is_named_and_leaves_the_database_as_it_was() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let ok_rows = "2020-01-02,AAA,1.0\n2020-01-03,AAA,1.1\n";
    let cases: &[(&str, &str, Option<u64>, &str)] = &[
        ("no_ticker.csv", "date,close\n2020-01-02,1.0\n", Some(1), "missing column(s) ticker"),
        (
            "bad_date.csv",
            &format!("date,ticker,close\n{ok_rows}2020-13-01,AAA,1.2\n"),
            Some(4),
            "date '2020-13-01' is not a date",
        ),
        (
            "bad_number.csv",
            &format!("date,ticker,close\n{ok_rows}2020-01-06,AAA,abc\n"),
            Some(4),
            "close 'abc' is not a number",
        ),
        ("negative.csv", &format!("date,ticker,close\n2020-01-02,AAA,-3\n{ok_rows}"), Some(2), "positive finite price"),
        ("nan.csv", &format!("date,ticker,close\n{ok_rows}2020-01-07,AAA,NaN\n"), Some(4), "positive finite price"),
        ("zero.csv", "date,ticker,close,open\n2020-01-02,AAA,1.0,0\n", Some(2), "open must be a positive"),
        ("neg_volume.csv", "date,ticker,close,volume\n2020-01-02,AAA,1.0,-5\n", Some(2), "volume must be"),
        (
            "duplicate.csv",
            &format!("date,ticker,close\n{ok_rows}2020-01-02,AAA,1.3\n"),
            Some(4),
            "duplicate row for AAA on 2020-01-02 (first seen at line 2)",
        ),
        ("ragged.csv", "date,ticker,close\n2020-01-02,AAA\n", Some(2), "not valid CSV"),
        ("empty.csv", "", None, "the file is empty"),
        ("header_only.csv", "date,ticker,close\n", None, "no data rows"),
    ];
    let before = env.dump();
    for (file, text, line, problem) in cases {
        let path = env.write(file, text);
        let err = env.fails(&["data", "import", path.to_str().unwrap()]);
        assert!(err.contains(file), "{file}: {err}");
        if let Some(line) = line {
            assert!(err.contains(&format!("line {line}:")), "{file}: {err}");
        }
        assert!(err.contains(problem), "{file}: {err}");
        assert_eq!(before, env.dump(), "{file} changed the database");
    }

    std::fs::create_dir(env.path("empty_folder")).unwrap();
    let err = env.fails(&["data", "import", env.path("empty_folder").to_str().unwrap()]);
    assert!(err.contains("empty_folder") && err.contains("no .csv file"), "{err}");
    let err = env.fails(&["data", "import", env.path("nowhere.csv").to_str().unwrap()]);
    assert!(err.contains("nowhere.csv") && err.contains("cannot read"), "{err}");

    // A folder file with a broken line names that file.
    env.write("yf/AAA.csv", "Date,Close\n2020-01-02,1\n");
    env.write("yf/BBB.csv", "Date,Close\n2020-01-02,1\n2020-01-03,x\n");
    let err = env.fails(&["data", "import", env.path("yf").to_str().unwrap()]);
    assert!(err.contains("BBB.csv, line 3"), "{err}");

    // A name that is taken by different data: refused inside the transaction, nothing written.
    let other = env.write("other.csv", &format!("date,ticker,close\n{ok_rows}"));
    let err = env.fails(&["data", "import", other.to_str().unwrap(), "--name", "sp500_20_close"]);
    assert!(err.contains("'sp500_20_close' is taken"), "{err}");
    assert_eq!(before, env.dump());
}

#[test]
fn synthetic_panels_are_reproducible_and_round_trip_through_csv() {
    let env = Env::new();
    let synth = |seed: &str, file: &str| {
        env.ok(&["data", "synth", "--tickers", "5", "--days", "300", "--seed", seed, "--signal", "0.3", "--csv", file]);
        std::fs::read(env.path(file)).unwrap()
    };
    assert_eq!(synth("7", "a.csv"), synth("7", "b.csv"));
    assert_ne!(synth("7", "a.csv"), synth("8", "c.csv"));

    env.ok(&["data", "synth", "--tickers", "5", "--days", "300", "--seed", "7", "--signal", "0.3"]);
    let again = env.ok(&["data", "import", env.path("a.csv").to_str().unwrap()]);
    assert!(again.contains("already stored as synth_5x300_seed7_signal0.3"), "{again}");
}

/// Share of days whose close-to-close direction repeats the previous day's, over all tickers.
fn repeat_share(env: &Env, name: &str) -> f64 {
    env.sql_one(&format!(
        "WITH r AS (SELECT ticker, date, ln(close / lag(close) OVER w) AS r FROM prices
                    JOIN datasets USING (dataset_id) WHERE name = '{name}' WINDOW w AS (PARTITION BY ticker ORDER BY date)),
              p AS (SELECT r, lag(r) OVER (PARTITION BY ticker ORDER BY date) AS prev FROM r)
         SELECT avg(CASE WHEN sign(r) = sign(prev) THEN 1.0 ELSE 0.0 END) FROM p WHERE r IS NOT NULL AND prev IS NOT NULL"
    ))
}

#[test]
fn a_planted_signal_is_there_and_a_random_walk_has_none() {
    let env = Env::new();
    for (signal, name) in [("0", "walk"), ("0.5", "signal")] {
        env.ok(&[
            "data",
            "synth",
            "--tickers",
            "20",
            "--days",
            "2000",
            "--seed",
            "3",
            "--signal",
            signal,
            "--name",
            name,
        ]);
    }
    // 40,000 day pairs: the standard error of a share near 0.5 is 0.0025.
    let walk = repeat_share(&env, "walk");
    let signal = repeat_share(&env, "signal");
    assert!((walk - 0.5).abs() < 0.015, "random walk repeats {walk}");
    // Phi(0.5) = 0.691
    assert!((signal - 0.691).abs() < 0.02, "planted signal repeats {signal}");
}

#[test]
fn synth_refuses_bad_settings() {
    let env = Env::new();
    let err = env.fails(&["data", "synth", "--tickers", "0", "--days", "10", "--seed", "1"]);
    assert!(err.contains("--tickers >= 1"), "{err}");
    let err = env.fails(&["data", "synth", "--tickers", "2", "--days", "10", "--seed", "1", "--signal=-1"]);
    assert!(err.contains("--signal must lie in [0, 3]"), "{err}");
}
