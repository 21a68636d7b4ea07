//! Two processes, one file: real hptune processes against one DuckDB file.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::Env;

#[test]
fn query_works_while_another_process_imports() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    // A panel big enough that storing it holds the file for a while.
    let mut writer = env
        .cmd()
        .args(["data", "synth", "--tickers", "300", "--days", "4000", "--seed", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut answered_while_running = 0;
    let start = Instant::now();
    loop {
        let running = writer.try_wait().unwrap().is_none();
        let out = env.ok(&["query", "SELECT count(*) AS n FROM datasets", "--format", "csv"]);
        assert!(out.starts_with("n\n"), "{out}");
        if running && writer.try_wait().unwrap().is_none() {
            answered_while_running += 1;
        }
        if !running || start.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let status = writer.wait_with_output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(answered_while_running > 0, "no query ran while the import was running");
    let n: i64 = env.sql_one("SELECT count(*) FROM datasets WHERE name = 'synth_300x4000_seed1'");
    assert_eq!(n, 1);
}

#[test]
fn two_importing_processes_both_succeed() {
    let env = Env::new();
    let children: Vec<_> = ["11", "12"]
        .iter()
        .map(|seed| {
            env.cmd()
                .args(["data", "synth", "--tickers", "100", "--days", "3000", "--seed", seed])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let n: i64 = env.sql_one("SELECT count(*) FROM datasets WHERE name LIKE 'synth_100x3000_seed1_'");
    assert_eq!(n, 2);
    let rows: i64 =
        env.sql_one("SELECT count(*) FROM prices JOIN datasets USING (dataset_id) WHERE name LIKE 'synth_100x3000%'");
    assert_eq!(rows, 2 * 100 * 3000);
}

/// Processes that find no database all make it at the same instant, and each opens a whole file.
/// DuckDB creates a file (truncating it) before it locks it: a second creator emptied the first's
/// header, or an opener read the empty one ("not a valid DuckDB database file").
#[test]
fn processes_that_make_the_file_at_once_all_open_it_whole() {
    let reference = Env::new();
    reference.ok(&["data", "list"]);
    let shipped: i64 = reference.sql_one("SELECT count(*) FROM datasets");
    for _ in 0..5 {
        let env = Env::new();
        let children: Vec<_> = (0..6)
            .map(|_| env.cmd().args(["data", "list"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let n: i64 = env.sql_one("SELECT count(*) FROM datasets");
        assert_eq!(n, shipped);
        let left: Vec<_> =
            std::fs::read_dir(env.path("")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(left, ["experiments.db"], "the private files of the processes that lost are removed");
    }
}

#[test]
fn a_bounded_wait_says_what_it_waited_for() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let before = env.dump();
    // This test process holds the file read-write, as a long-running writer would.
    let holder = duckdb::Connection::open(&env.db).unwrap();
    let started = Instant::now();
    let err = env.fails(&["--lock-timeout", "0.5", "query", "SELECT 1 AS x"]);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(err.contains("gave up after") && err.contains("experiments.db"), "{err}");
    assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
    let csv = env.write("x.csv", "date,ticker,close\n2020-01-02,A,1\n");
    let err = env.fails(&["--lock-timeout", "0.2", "data", "import", csv.to_str().unwrap()]);
    assert!(err.contains("gave up after"), "{err}");
    drop(holder);
    assert_eq!(before, env.dump());
    assert!(env.ok(&["query", "SELECT 1 AS x", "--format", "csv"]).contains('1'));
}
