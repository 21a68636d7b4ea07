//! Provenance and `hptune diff`: every run records where it came from, and two runs of one kind
//! are compared fact by fact.

use crate::common::Env;
use crate::pipeline::pipeline;

/// The commit the test binary's crate is at, when the checkout has git.
fn head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn two_pipelines_differ_in_what_was_changed_and_every_run_says_where_it_came_from() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    pipeline(&env, "s", &["--seed", "1"]);
    pipeline(&env, "s", &["--seed", "2", "--embargo", "3"]);

    // Every study, extended run, selection, final model and backtest (and every trial and fold
    // run) points at the process that wrote it; the commit is the build's.
    let kinds: String = env.sql_one(
        "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM run_provenance WHERE git_commit <> 'unknown'",
    );
    assert_eq!(kinds, "backtest,extended_run,final_model,fold_run,selection,study,trial_run");
    let unknown: i64 = env.sql_one("SELECT count(*) FROM run_provenance WHERE provenance_id IS NULL");
    assert_eq!(unknown, 0);
    let (commit, kernels, threads, command): (String, String, i32, String) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row(
            "SELECT git_commit, kernel_path, threads, command_line FROM run_provenance WHERE kind = 'selection'
             ORDER BY recorded_at DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    if let Some(head) = head() {
        assert!(commit.starts_with(&head), "{commit} is not HEAD {head}");
    }
    assert!(["avx512", "avx2", "baseline"].contains(&kernels.as_str()), "{kernels}");
    assert!(threads >= 1);
    assert!(command.contains("pipeline") && command.contains("--seed 2 --embargo 3"), "{command}");
    let hash: i64 =
        env.sql_one("SELECT count(*) FROM run_provenance p JOIN datasets d ON d.content_hash = p.dataset_hash");
    let runs: i64 = env.sql_one("SELECT count(*) FROM run_provenance");
    assert_eq!(hash, runs, "a run without its dataset's hash");

    // diff --last 2: only what differs, settings first; the same as the pipeline_diff view.
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["diff", "--last", "2", "--format", "json"])).unwrap();
    assert_eq!(json["kind"], "selection");
    let facts = json["facts"].as_array().unwrap();
    let fact = |key: &str| facts.iter().find(|f| f["key"] == key).cloned();
    assert_eq!(fact("cv embargo_days").unwrap()["a"], "5");
    assert_eq!(fact("cv embargo_days").unwrap()["b"], "3");
    assert_eq!(fact("study seed").unwrap()["b"], "2");
    assert!(fact("dataset_hash").is_none() && fact("commit").is_none(), "unchanged facts shown: {json}");
    assert_eq!(facts[0]["section"], "settings");
    let view: i64 = env.sql_one("SELECT count(*) FROM pipeline_diff");
    assert_eq!(view as usize, facts.len());
    for f in facts {
        assert_ne!(f["a"], f["b"], "{f}");
    }
    // --all: the same facts too; a table on a terminal.
    let all: serde_json::Value =
        serde_json::from_str(&env.ok(&["diff", "--last", "2", "--all", "--format", "json"])).unwrap();
    let all = all["facts"].as_array().unwrap();
    assert!(all.len() > facts.len() + 10);
    assert!(all.iter().any(|f| f["key"] == "dataset_hash" && f["a"] == f["b"]));
    assert!(all.iter().any(|f| f["section"] == "results" && f["key"] == "backtest_return_pct"));
    let table = env.ok(&["diff", "--last", "2"]);
    assert!(table.contains("cv embargo_days") && table.contains("section"), "{table}");

    // Studies on two datasets: the tickers added and removed, the data that changed.
    env.ok(&["data", "synth", "--tickers", "4", "--days", "500", "--seed", "5", "--name", "s4"]);
    env.ok(&["tune", "--dataset", "s4", "--study", "wide", "--trials", "2", "--epochs", "1"]);
    let first: String = env.sql_one("SELECT study_name FROM studies ORDER BY created_at LIMIT 1");
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["diff", &first, "wide", "--format", "json"])).unwrap();
    let facts = json["facts"].as_array().unwrap();
    let added = facts.iter().find(|f| f["key"] == "tickers added").expect("tickers added");
    let (a, b): (String, String) = {
        let conn = crate::common::read_only(&env.db);
        let list = |name: &str| -> String {
            conn.query_row(
                "SELECT string_agg(ticker, ',' ORDER BY position) FROM dataset_tickers JOIN datasets USING (dataset_id)
                 WHERE name = ?",
                [name],
                |r| r.get(0),
            )
            .unwrap()
        };
        (list("s"), list("s4"))
    };
    let expected: Vec<&str> = b.split(',').filter(|t| !a.split(',').any(|x| x == *t)).collect();
    assert_eq!(added["b"], expected.join(","), "{json}");
    assert!(facts.iter().any(|f| f["key"] == "dataset_hash"));
    assert!(facts.iter().any(|f| f["key"] == "trials" && f["b"] == "2"), "{json}");

    // Mistakes: ids of two kinds, an unknown id, one id; nothing written.
    let before = env.dump();
    let err = env.fails(&["diff", &first, json_id(&env, "backtest_id", "backtests").as_str()]);
    assert!(err.contains("is a study") && err.contains("backtest") && err.contains("one kind"), "{err}");
    let err = env.fails(&["diff", "nope", "wide"]);
    assert!(err.contains("'nope'") && err.contains("run_provenance"), "{err}");
    assert!(env.fails(&["diff", "wide"]).contains("--last 2"));
    assert!(env.fails(&["diff", "--last", "3"]).contains("--last takes 2"));
    assert_eq!(env.dump(), before);

    // The report says what changed since the previous pipeline, and where the runs came from.
    env.ok(&["report", "--out", "r.html"]);
    let html = std::fs::read_to_string(env.path("r.html")).unwrap();
    assert!(html.contains("What changed since the previous pipeline") && html.contains("cv embargo_days"));
    assert!(html.contains("Where these runs came from"));
}

fn json_id(env: &Env, column: &str, table: &str) -> String {
    env.sql_one(&format!("SELECT max({column}) FROM {table}"))
}

#[test]
fn rows_written_before_provenance_read_as_unknown() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "4", "--name", "s"]);
    env.ok(&["tune", "--dataset", "s", "--study", "old", "--trials", "1", "--epochs", "1"]);
    // As a database migrated from before provenance holds them: no pointer, no row.
    {
        let conn = duckdb::Connection::open(&env.db).unwrap();
        conn.execute_batch(
            "UPDATE studies SET provenance_id = NULL; UPDATE training_runs SET provenance_id = NULL; DELETE FROM provenance;",
        )
        .unwrap();
    }
    let row: String = env.sql_one(
        "SELECT git_commit || ' ' || command_line || ' ' || host || ' ' || kernel_path || ' ' || coalesce(threads::VARCHAR, 'unknown')
         FROM run_provenance WHERE kind = 'study'",
    );
    assert_eq!(row, "unknown unknown unknown unknown unknown");
    // Its version is still what the row recorded.
    let version: String = env.sql_one("SELECT hptune_version FROM run_provenance WHERE kind = 'study'");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn tags_and_notes_land_on_any_run_show_in_diff_and_the_report_and_reach_optuna_dashboard() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    pipeline(&env, "s", &["--seed", "1"]);
    pipeline(&env, "s", &["--seed", "2"]);
    let (older, newer): (String, String) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row("SELECT min(selection_id), max(selection_id) FROM selections", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    let study: String = env
        .sql_one("SELECT study_name FROM selections WHERE selection_id = (SELECT max(selection_id) FROM selections)");

    // Tags: set, replace, remove; listed back.
    env.ok(&["tag", &newer, "market=us", "owner=ana"]);
    let out = env.ok(&["tag", &newer, "market=eu", "--remove", "owner"]);
    assert_eq!(out.trim(), format!("{newer}: market=eu"));
    // Notes: numbered in order, on a study and on a trial's run.
    assert!(env.ok(&["note", &study, "first week on **new data**"]).contains("note 1"));
    assert!(env.ok(&["note", &study, "second thought"]).contains("note 2"));
    env.ok(&["note", &format!("{study}/trial-0"), "this trial ran on a busy machine"]);
    let listed = env.ok(&["note", &study]);
    assert!(listed.contains("note 1") && listed.contains("second thought"), "{listed}");

    // Mistakes name the id or the argument and write nothing.
    let before = env.dump();
    let err = env.fails(&["tag", "nope", "a=b"]);
    assert!(err.contains("'nope'") && err.contains("run_provenance"), "{err}");
    let err = env.fails(&["tag", &newer, "novalue"]);
    assert!(err.contains("'novalue' is not KEY=VALUE"), "{err}");
    assert!(env.fails(&["note", "nope", "text"]).contains("'nope'"));
    assert!(env.fails(&["note", &newer, "  "]).contains("empty"));
    assert_eq!(env.dump(), before);

    // The view, diff and the report show them.
    let row: String = env.sql_one(&format!("SELECT kind || ' ' || tags FROM run_annotations WHERE id = '{newer}'"));
    assert_eq!(row, "selection market=eu");
    let notes: i64 = env.sql_one(&format!("SELECT notes FROM run_annotations WHERE id = '{study}'"));
    assert_eq!(notes, 2);
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["diff", &older, &newer, "--format", "json"])).unwrap();
    let tag = json["facts"].as_array().unwrap().iter().find(|f| f["section"] == "tags").cloned().unwrap();
    assert_eq!((tag["key"].as_str(), tag["a"].as_str(), tag["b"].as_str()), (Some("market"), None, Some("eu")));
    env.ok(&["report", "--out", "r.html"]);
    let html = std::fs::read_to_string(env.path("r.html")).unwrap();
    assert!(html.contains("Tags and notes") && html.contains("market=eu") && html.contains("second thought"));

    // The study's Optuna export carries the notes as optuna-dashboard reads them.
    env.ok(&["export", "tune", "--run", &study, "--to", "again"]);
    let db = env.path("again/hyperparameter_tuning_results/optimization_study.db");
    let script = r#"
import json, sys, optuna
from optuna_dashboard._note import get_note_from_system_attrs
storage = optuna.storages.RDBStorage("sqlite:///" + sys.argv[1])
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
attrs = storage.get_study_system_attrs(study._study_id)
trial = [t for t in study.trials if t.number == 0][0]
print(json.dumps({"study": get_note_from_system_attrs(attrs, None)["body"],
                  "trial": get_note_from_system_attrs(attrs, trial._trial_id)["body"]}))
"#;
    let out = std::process::Command::new(crate::interop::python())
        .arg("-c")
        .arg(script)
        .arg(&db)
        .arg(&study)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let notes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = notes["study"].as_str().unwrap();
    assert!(body.contains("first week on **new data**") && body.contains("second thought"), "{body}");
    assert!(body.find("first week").unwrap() < body.find("second thought").unwrap());
    assert!(notes["trial"].as_str().unwrap().contains("busy machine"), "{notes}");
}
