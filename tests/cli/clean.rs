//! `hptune clean`: it lists what it would free and touches nothing; with `--apply` only weights
//! and moved-aside outputs go, never what a selection, final model or backtest uses, every other
//! row stays, and the file shrinks by what it showed.

use std::collections::BTreeSet;

use crate::common::Env;
use crate::pipeline::{files, pipeline};

/// Every table's dump line except those a cleanup changes (checkpoint weights, the cleanups).
fn record(env: &Env) -> String {
    env.dump()
        .lines()
        .filter(|l| !["checkpoints:", "checkpoint_files:", "cleanups:"].iter().any(|t| l.starts_with(t)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn clean_lists_then_removes_only_unneeded_weights_and_moved_aside_outputs_and_compacts() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "21", "--signal", "0.3", "--name", "s"]);
    pipeline(&env, "s", &[]);
    pipeline(&env, "s", &["--seed", "5"]);
    let aside: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".20") && !n.ends_with(".db"))
        .collect();
    assert!(aside.len() >= 5, "{aside:?}");
    // A process writing into one moved-aside folder keeps it.
    let busy = env.path(&aside.iter().find(|n| n.starts_with("backtesting_results.")).unwrap().clone());
    let lock = std::fs::File::create(busy.join(".hptune.lock")).unwrap();
    lock.lock_shared().unwrap();

    // The dry run touches nothing.
    let (db_before, files_before, record_before) =
        (std::fs::read(&env.db).unwrap(), files(env.dir.path()), record(&env));
    let listed = json(&env.ok(&["clean", "--keep-top", "1", "--format", "json"]));
    assert_eq!(std::fs::read(&env.db).unwrap(), db_before, "the dry run changed the database");
    assert_eq!(files(env.dir.path()), files_before);
    let items = listed["plan"]["items"].as_array().unwrap();
    let whats: Vec<&str> = items.iter().map(|i| i["what"].as_str().unwrap()).collect();
    for name in aside.iter().filter(|n| !n.starts_with("backtesting_results.")) {
        assert!(whats.iter().any(|w| w.ends_with(name.as_str())), "{name} not listed: {whats:?}");
    }
    assert!(whats.iter().any(|w| w.starts_with("study ")), "{whats:?}");
    assert!(listed["plan"]["busy"][0].as_str().unwrap().ends_with(busy.file_name().unwrap().to_str().unwrap()));
    let shown = listed["database_bytes"].as_u64().unwrap();
    assert!(shown > 0 && listed["disk_bytes"].as_u64().unwrap() > 0, "{listed}");

    let size_before = std::fs::metadata(&env.db).unwrap().len();
    let applied = json(&env.ok(&["clean", "--keep-top", "1", "--apply", "--format", "json"]));
    let size_after = std::fs::metadata(&env.db).unwrap().len();
    assert_eq!(applied["applied"]["compacted"], serde_json::json!([size_before, size_after]), "{applied}");
    // The file is smaller by what was shown, to within DuckDB's allocation in 256 kB blocks (a
    // few blocks of the copy's own metadata).
    let shrunk = size_before - size_after;
    let slack = (0.1 * shown as f64).max(4.0 * 262_144.0);
    assert!(shrunk as f64 >= shown as f64 - slack, "shrunk {shrunk}, shown {shown}");
    assert!(busy.exists());
    drop(lock);
    for name in aside.iter().filter(|n| !n.starts_with("backtesting_results.")) {
        // Gone, or holding only checkpoint files something uses.
        let left: Vec<_> = walk(&env.path(name));
        assert!(left.iter().all(|f| f.ends_with("model.safetensors")), "{name}: {left:?}");
    }

    // Every row of the record stays; the weights that went are marked, the used ones are not.
    assert_eq!(record(&env), record_before);
    let cleanup = applied["applied"]["cleanup_id"].as_str().unwrap();
    let cleaned: i64 = env.sql_one(&format!("SELECT count(*) FROM checkpoints WHERE cleanup_id = '{cleanup}'"));
    assert_eq!(cleaned as u64, items.iter().map(|i| i["checkpoints"].as_u64().unwrap()).sum::<u64>());
    let used_but_cleaned: i64 = env.sql_one(
        "SELECT count(*) FROM checkpoints c JOIN training_runs r USING (run_id)
         WHERE c.cleanup_id IS NOT NULL AND (r.stage = 'train' OR r.run_id IN (SELECT run_id FROM backtests)
            OR (r.extended_run_id, r.config_rank) IN (SELECT (extended_run_id, config_rank) FROM selections))",
    );
    assert_eq!(used_but_cleaned, 0);
    let missing_bytes: i64 = env.sql_one(
        "SELECT count(*) FROM checkpoints WHERE cleanup_id IS NULL AND sha256 NOT IN (SELECT sha256 FROM checkpoint_files)",
    );
    assert_eq!(missing_bytes, 0);
    let per_study: i64 = env.sql_one(
        "SELECT max(n) FROM (SELECT count(*) n FROM checkpoints c JOIN training_runs r USING (run_id)
         WHERE r.stage = 'tune' AND c.cleanup_id IS NULL GROUP BY r.study_name)",
    );
    assert!(per_study <= 2, "more than the top 1 and the selected trial kept: {per_study}");

    // Every view still answers, export writes the kept weights and marks the cleaned ones, and
    // the backtest runs.
    let views: Vec<String> = {
        let conn = crate::common::read_only(&env.db);
        let mut stmt = conn.prepare("SELECT view_name FROM duckdb_views() WHERE NOT internal").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert!(views.len() >= 11, "{views:?}");
    for v in &views {
        env.ok(&["query", v, "--format", "csv"]);
    }
    env.ok(&["export", "--to", "again"]);
    let results =
        json(&std::fs::read_to_string(env.path("again/hyperparameter_tuning_results/trial_results.json")).unwrap());
    let entries: Vec<&serde_json::Value> = results["trials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.get("checkpoint"))
        .filter(|c| !c.is_null())
        .collect();
    let marked = entries.iter().filter(|c| c["cleaned_by"] == cleanup).count();
    let placed: BTreeSet<&str> = entries.iter().filter_map(|c| c["path"].as_str()).collect();
    assert!(marked > 0 && !placed.is_empty(), "{entries:?}");
    for p in placed {
        assert!(std::path::Path::new(p).exists(), "{p}");
    }
    env.ok(&["backtest"]);
    env.ok(&["backtest", "--model-path", "again/final_model"]);

    // No weights are left to clean at these settings; an age limit takes every trial nobody uses.
    let again = json(&env.ok(&["clean", "--keep-top", "1", "--format", "json"]));
    let weights = again["plan"]["items"].as_array().unwrap().iter().filter(|i| i["checkpoints"] != 0).count();
    assert_eq!(weights, 0, "{again}");
    let unselected: i64 = env.sql_one(
        "SELECT count(*) FROM checkpoints c JOIN training_runs r USING (run_id) WHERE r.stage = 'tune'
         AND c.cleanup_id IS NULL AND (r.study_name, r.trial_number) NOT IN (SELECT (study_name, trial_number) FROM selections)",
    );
    let old = json(&env.ok(&["clean", "--keep-top", "1", "--older-than", "0", "--apply", "--format", "json"]));
    if unselected > 0 {
        // A study's best trial that was not selected goes once its study is old enough.
        assert!(old["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["why"].as_str().unwrap().contains("older than 0 days")));
    }
    let trials_kept: i64 = env.sql_one(
        "SELECT count(*) FROM checkpoints c JOIN training_runs r USING (run_id) WHERE r.stage = 'tune' AND c.cleanup_id IS NULL",
    );
    let selected: i64 = env.sql_one("SELECT count(DISTINCT (study_name, trial_number)) FROM selections");
    assert!(trials_kept <= selected, "{trials_kept} trial checkpoints kept, {selected} selected");
    let cleanups: i64 = env.sql_one("SELECT count(*) FROM cleanups");
    assert_eq!(cleanups, 2);
}

/// Every file under `dir` (none when it is gone).
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.exists() {
            out.push(p.display().to_string());
        }
    }
    out
}

/// `clean` sweeps only what this database moved aside: a colleague's export folder, whose model
/// was imported from there, keeps every file beside it, even those named like moved-aside outputs.
#[test]
fn clean_sweeps_only_what_this_database_moved_aside() {
    let colleague = Env::new();
    colleague.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--name", "s"]);
    let config = colleague.write(
        "c.json",
        r#"{"model_type": "mlp", "hidden_size": 8, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
            "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 2}"#,
    );
    colleague.ok(&["train", "--config", config.to_str().unwrap(), "--dataset", "s", "--out", "exports/final_model"]);
    colleague.write("exports/final_model.20240101-000000/notes.txt", "a colleague's older model\n");
    colleague.write("exports/backtesting_results.20240101-000000/stats.json", "{}\n");
    let exports = colleague.path("exports");
    let before = crate::common::tree(&exports);

    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--name", "mine"]);
    let model = exports.join("final_model");
    env.ok(&["backtest", "--model-path", model.to_str().unwrap()]);
    env.ok(&["backtest", "--model-path", model.to_str().unwrap()]);
    let ours: i64 = env.sql_one("SELECT count(*) FROM moved_aside");
    assert_eq!(ours, 1, "the second backtest moved the first one's folder aside");
    let applied = json(&env.ok(&["clean", "--keep-top", "0", "--apply", "--format", "json"]));
    assert!(applied["applied"]["files_removed"].as_u64().unwrap() > 0, "{applied}");
    assert_eq!(crate::common::tree(&exports), before, "clean touched the colleague's folder");
    let left = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("backtesting_results."));
    assert_eq!(left.count(), 0, "our own moved-aside backtest folder was not swept");
}
