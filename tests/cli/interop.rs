//! The database opens in Python's duckdb package of the same DuckDB version.

use std::path::PathBuf;
use std::process::Command;

use crate::common::Env;

pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("HPTUNE_PYTHON") {
        return p.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(venv.exists(), "no {} : run the README's test command, which creates it", venv.display());
    venv
}

#[test]
fn python_duckdb_reads_a_view_written_by_hptune() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "50", "--seed", "1", "--name", "tiny"]);
    let script = r#"
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
for name, n, tickers, rows in con.execute(
        "SELECT name, n_tickers, tickers, rows FROM datasets_overview ORDER BY name").fetchall():
    print(name, n, tickers, rows)
# Every view hptune defines runs in Python's duckdb too.
for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall():
    con.execute(f"SELECT count(*) FROM {view}").fetchall()
    print("view", view)
"#;
    let out = Command::new(python()).arg("-c").arg(script).arg(&env.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("sp500_20_close 20 AAPL,AMD,BAC"), "{text}");
    assert!(text.contains("tiny 3 S0,S1,S2 150"), "{text}");
    for view in hptune::store::VIEWS {
        assert!(text.contains(&format!("view {}\n", view.name)), "{} not read: {text}", view.name);
    }
}
