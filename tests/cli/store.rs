//! The database file: schema migrations, views, shipped data on creation.

use std::collections::BTreeSet;

use crate::common::{shipped, Env};

#[test]
fn a_new_database_holds_the_shipped_data_in_canonical_order() {
    let env = Env::new();
    let list = env.ok(&["data", "list"]);
    assert!(list.contains("sp500_20_close") && list.contains("us6_ohlcv"), "{list}");

    // Expected values come from reading the shipped CSV here, independently of hptune.
    let text = std::fs::read_to_string(shipped("sp500_20_close.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let dates: BTreeSet<&str> = rows.iter().map(|r| r[0]).collect();
    let mut order: Vec<&str> = Vec::new();
    for r in &rows {
        if !order.contains(&r[1]) {
            order.push(r[1]);
        }
    }
    let show = env.ok(&["data", "show", "sp500_20_close"]);
    assert!(show.contains(&format!("tickers       20 in order: {}", order.join(" "))), "{show}");
    assert!(show.contains(&format!("({} trading days)", dates.len())), "{show}");
    assert!(show.contains(&format!("rows          {} (0 missing", rows.len())), "{show}");
    assert!(show.contains(&format!("{} .. {}", dates.first().unwrap(), dates.last().unwrap())), "{show}");

    let ohlcv: bool = env.sql_one("SELECT has_ohlcv FROM datasets WHERE name = 'us6_ohlcv'");
    assert!(ohlcv);
}

#[test]
fn opening_again_changes_nothing() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let before = env.dump();
    let history = env.ok(&["query", "schema_history", "--format", "csv"]);
    env.ok(&["data", "list"]);
    env.ok(&["data", "show", "us6_ohlcv"]);
    assert_eq!(before, env.dump());
    assert_eq!(history, env.ok(&["query", "schema_history", "--format", "csv"]));
    assert!(history.contains("1,datasets,"), "{history}");
}

#[test]
fn an_edited_migration_is_refused_by_name() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    {
        let conn = duckdb::Connection::open(&env.db).unwrap();
        conn.execute("UPDATE hptune_migrations SET checksum = 'abc' WHERE version = 1", []).unwrap();
    }
    let before = env.dump();
    let err = env.fails(&["data", "list"]);
    assert!(err.contains("0001_datasets.sql") && err.contains("never edited"), "{err}");
    assert_eq!(before, env.dump());
}

#[test]
fn a_database_from_a_newer_hptune_is_refused() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    {
        let conn = duckdb::Connection::open(&env.db).unwrap();
        conn.execute("INSERT INTO hptune_migrations VALUES (9999, 'future', 'x', now()::TIMESTAMP, '99.0.0')", [])
            .unwrap();
    }
    for args in [&["data", "list"][..], &["query", "SELECT 1 AS x"][..]] {
        let err = env.fails(args);
        assert!(err.contains("newer hptune") && err.contains("9999"), "{err}");
    }
}

#[test]
fn every_migration_file_is_registered_in_order() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    let registered: Vec<String> =
        hptune::store::MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
    assert_eq!(files, registered);
    for (i, m) in hptune::store::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i32 + 1);
    }
}

/// A database written before migration 0010 (studies and trials without a sampler) opens with
/// its rows kept: studies as `tpe`, their trials `halton` in the random phase and `tpe` after.
#[test]
fn migration_0010_keeps_earlier_studies_and_names_their_samplers() {
    let env = Env::new();
    {
        let conn = duckdb::Connection::open(&env.db).unwrap();
        conn.execute_batch(
            "CREATE TABLE hptune_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL,
             applied_at TIMESTAMP NOT NULL, hptune_version VARCHAR NOT NULL)",
        )
        .unwrap();
        for m in hptune::store::MIGRATIONS.iter().filter(|m| m.version <= 9) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO hptune_migrations VALUES (?, ?, ?, now()::TIMESTAMP, '0.1.0')",
                duckdb::params![m.version, m.name, m.checksum()],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO studies VALUES ('old', 'maximize', 'd', '', 3, 1, 1, 1, 42, 2, 0.2, true, '{}', '0.1.0', now()::TIMESTAMP);
             INSERT INTO trials VALUES
               ('old', 0, 'random', 'COMPLETE', 0.5, 0.69, NULL, 'w', NULL, NULL, now()::TIMESTAMP, now()::TIMESTAMP, 1.0, now()::TIMESTAMP),
               ('old', 1, 'bayesian', 'PRUNED', 0.4, 0.70, NULL, 'w', 3, NULL, now()::TIMESTAMP, now()::TIMESTAMP, 1.0, now()::TIMESTAMP),
               ('old', 2, 'finetune', 'FAIL', NULL, NULL, NULL, 'w', NULL, 'x', now()::TIMESTAMP, now()::TIMESTAMP, 1.0, now()::TIMESTAMP);",
        )
        .unwrap();
    }
    env.ok(&["data", "list"]);
    let rows = env.ok(&[
        "query",
        "SELECT s.sampler AS study, t.number, t.phase, t.state, t.value, t.sampler FROM studies s JOIN trials t USING (study_name) ORDER BY number",
        "--format",
        "csv",
    ]);
    assert_eq!(
        rows,
        "study,number,phase,state,value,sampler\ntpe,0,random,COMPLETE,0.5,halton\ntpe,1,bayesian,PRUNED,0.4,tpe\ntpe,2,finetune,FAIL,,tpe\n"
    );
    let conn = duckdb::Connection::open(&env.db).unwrap();
    let err = conn.execute("UPDATE trials SET sampler = 'cmaes'", []).unwrap_err().to_string();
    assert!(err.contains("CHECK constraint"), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let env = Env::new();
    std::fs::write(&env.db, "not a database").unwrap();
    let err = env.fails(&["data", "list"]);
    assert!(err.contains("experiments.db"), "{err}");
    assert_eq!(std::fs::read_to_string(&env.db).unwrap(), "not a database");
}

#[test]
fn views_are_recreated_only_when_their_checksum_differs() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let view_sql =
        |env: &Env| -> String { env.sql_one("SELECT sql FROM duckdb_views() WHERE view_name = 'cv_summary'") };
    let original = view_sql(&env);
    // Another definition under the same checksum: a writing command leaves it alone (no re-creation
    // on each open).
    {
        let c = duckdb::Connection::open(&env.db).unwrap();
        c.execute_batch("CREATE OR REPLACE VIEW cv_summary AS SELECT 1 AS marker").unwrap();
    }
    env.ok(&["data", "synth", "--tickers", "2", "--days", "100", "--seed", "1"]);
    assert!(view_sql(&env).contains("marker"));
    // Another checksum (views of another hptune): the next read-write open re-creates them.
    {
        let c = duckdb::Connection::open(&env.db).unwrap();
        c.execute_batch("UPDATE hptune_views SET checksum = 'other'").unwrap();
    }
    env.ok(&["data", "synth", "--tickers", "2", "--days", "100", "--seed", "2"]);
    assert_eq!(view_sql(&env), original);
}

#[test]
fn lineage_is_in_columns_and_states_outside_the_lists_are_refused_by_hand_too() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    env.ok(&[
        "pipeline",
        "--dataset",
        "s",
        "--trials",
        "3",
        "--epochs",
        "2",
        "--top-n",
        "1",
        "--folds",
        "2",
        "--extend-epochs",
        "2",
        "--final-epochs",
        "2",
        "--jobs",
        "1",
    ]);
    let lineage = env.ok(&[
        "query",
        "SELECT stage, bool_and(study_name IS NOT NULL AND trial_number IS NOT NULL),
                bool_and(extended_run_id IS NOT NULL AND config_rank IS NOT NULL AND fold IS NOT NULL),
                bool_and(selection_id IS NOT NULL), bool_and(worker IS NOT NULL)
         FROM training_runs GROUP BY stage ORDER BY stage",
        "--format",
        "csv",
    ]);
    assert_eq!(
        lineage.lines().skip(1).collect::<Vec<_>>(),
        ["extend,false,true,false,true", "train,false,false,true,true", "tune,true,false,false,true"],
        "{lineage}"
    );
    let history = env.ok(&["query", "SELECT final_run_id IS NOT NULL FROM pipeline_history", "--format", "csv"]);
    assert_eq!(history.lines().nth(1), Some("true"), "{history}");
    let before = env.dump();
    let conn = duckdb::Connection::open(&env.db).unwrap();
    for sql in [
        "UPDATE trials SET state = 'DONE' WHERE number = 0",
        "UPDATE training_runs SET status = 'stopped'",
        "UPDATE cv_folds SET status = 'skipped'",
        "UPDATE backtests SET model_source = 'mine'",
        "UPDATE backtest_trades SET side = 'sideways'",
        "UPDATE checkpoints SET role = 'other'",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("CHECK constraint failed"), "{sql}: {err}");
    }
    drop(conn);
    assert_eq!(env.dump(), before);
}
