//! Studies on a PostgreSQL study server (`--storage`), in Optuna's own tables: workers in several
//! processes with their own databases, Python Optuna reading the study live, `hptune pull`.
//! Each test starts a throwaway server (`common::PgServer`).

use std::collections::BTreeMap;
use std::process::Stdio;

use serde_json::Value as Json;

use crate::common::{Env, PgServer};
use crate::interop::python;
use crate::tune::SPACE;

/// Whether the first worker has created Optuna's tables yet.
fn has_schema(c: &mut postgres::Client) -> bool {
    c.query_one("SELECT to_regclass('trials') IS NOT NULL", &[]).unwrap().get(0)
}

/// Trials on the server: (number, state) of every trial of the study, by trial id (none before
/// the schema exists).
fn server_trials(pg: &PgServer, db: &str, study: &str) -> Vec<(i32, String)> {
    let mut c = pg.client(db);
    if !has_schema(&mut c) {
        return Vec::new();
    }
    c.query(
        "SELECT t.number, t.state::text FROM trials t JOIN studies s USING (study_id) WHERE s.study_name = $1
             ORDER BY t.trial_id",
        &[&study],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Trials as Optuna 5 loads them from the server: number -> (state, value, params).
fn optuna_trials(url: &str, study: &str) -> BTreeMap<i64, Json> {
    let script = r#"
import json, sys, optuna
s = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1].replace("postgresql://", "postgresql+psycopg2://"))
print(json.dumps({t.number: {"state": t.state.name, "value": t.value, "params": t.params,
                             "sampler": t.system_attrs.get("hptune:sampler")} for t in s.trials}))
# optuna-dashboard serves the study from the server
from optuna_dashboard import wsgi
from wsgiref.util import setup_testing_defaults
app = wsgi(sys.argv[1].replace("postgresql://", "postgresql+psycopg2://"))
for path in ["/api/studies", "/api/studies/%d" % s._study_id]:
    env = {}
    setup_testing_defaults(env)
    env["PATH_INFO"] = path
    status = []
    body = b"".join(app(env, lambda st, h, *a: status.append(st)))
    assert status[0].startswith("200"), (path, status, body[:300])
    if path != "/api/studies":
        assert len(json.loads(body)["trials"]) == len(s.trials), body[:300]
"#;
    let out = std::process::Command::new(python()).args(["-c", script, url, study]).output().unwrap();
    assert!(out.status.success(), "optuna: {}", String::from_utf8_lossy(&out.stderr));
    let first = out.stdout.split(|b| *b == b'\n').next().unwrap();
    let map: BTreeMap<String, Json> = serde_json::from_slice(first).unwrap();
    map.into_iter().map(|(k, v)| (k.parse().unwrap(), v)).collect()
}

#[test]
fn three_workers_on_three_machines_share_one_study_with_unique_dense_numbers_and_the_exact_budget() {
    let pg = PgServer::start();
    let url = pg.database("shared");
    // Three "machines": each its own folder and database; only the first has the dataset.
    let first = Env::new();
    first.ok(&["data", "synth", "--tickers", "3", "--days", "600", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = first.write("space.toml", SPACE).to_string_lossy().into_owned();
    let args = |trials: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["tune", "--storage", url.as_str(), "--study", "shared", "--trials", trials, "--epochs", "4"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The first machine creates the study (one trial); then all three raise it to 14 trials at once,
    // the other two with neither the dataset nor the space.
    first.ok(&args("1", &["--dataset", "s", "--space", &space]).iter().map(String::as_str).collect::<Vec<_>>());
    let others: Vec<Env> = (0..2).map(|_| Env::new()).collect();
    let workers: Vec<_> = [&first, &others[0], &others[1]]
        .iter()
        .map(|e| e.cmd().args(args("14", &[])).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let trials = server_trials(&pg, "shared", "shared");
    let mut numbers: Vec<i32> = trials.iter().map(|t| t.0).collect();
    numbers.sort();
    assert_eq!(numbers, (0..trials.len() as i32).collect::<Vec<_>>(), "numbers are unique and dense: {trials:?}");
    let done = trials.iter().filter(|t| t.1 == "COMPLETE" || t.1 == "PRUNED").count();
    assert_eq!(done, 14, "the budget is met exactly: {trials:?}");
    assert!(trials.iter().all(|t| t.1 != "RUNNING"), "{trials:?}");
    // The fresh machines imported the dataset from the server, under its content hash.
    let id = |e: &Env| e.sql_one::<String>("SELECT dataset_id FROM datasets WHERE name = 's'");
    assert_eq!(id(&others[0]), id(&first));
    let workers: i64 = pg
        .client("shared")
        .query_one("SELECT count(DISTINCT value_json) FROM trial_system_attributes WHERE key = 'hptune:worker'", &[])
        .unwrap()
        .get(0);
    assert!(workers >= 2, "the trials were shared among the workers ({workers} ran them all)");

    // Python Optuna reads the same study; `hptune pull` copies the same trials.
    let optuna = optuna_trials(url.as_str(), "shared");
    assert_eq!(optuna.len(), trials.len());
    let puller = Env::new();
    let out = puller.ok(&["pull", "--storage", url.as_str(), "--study", "shared"]);
    assert!(out.contains(&format!("{} trials added", trials.len())), "{out}");
    let rows: Vec<(i64, String, Option<f64>, String)> = {
        let conn = crate::common::read_only(&puller.db);
        let mut stmt = conn
            .prepare(
                "SELECT number, state, value, (SELECT json_group_object(name, json(value_json)) FROM trial_params p
                   WHERE p.study_name = t.study_name AND p.number = t.number)::VARCHAR
                 FROM trials t WHERE study_name = 'shared' ORDER BY number",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(rows.len(), trials.len());
    for (number, state, value, params) in &rows {
        let o = &optuna[number];
        assert_eq!(o["state"], *state, "trial {number}");
        let params: Json = serde_json::from_str(params).unwrap();
        assert_eq!(o["params"], params, "trial {number}");
        if state == "COMPLETE" {
            assert_eq!(o["value"].as_f64(), *value, "trial {number}");
        }
        assert!(o["sampler"].is_string(), "trial {number} records its sampler: {o}");
    }
    // Epochs and checkpoints came along, and the pulled study works like a local one.
    let epochs: i64 = puller.sql_one("SELECT count(*) FROM epoch_metrics m JOIN trials t USING (run_id)");
    assert!(epochs >= 14, "{epochs}");
    let best_ok: i64 = puller.sql_one(
        "SELECT count(*) FROM trials t JOIN checkpoints c USING (run_id) JOIN checkpoint_files f USING (sha256)
         WHERE t.state = 'COMPLETE'",
    );
    let complete: i64 = puller.sql_one("SELECT count(*) FROM trials WHERE state = 'COMPLETE'");
    assert_eq!(best_ok, complete);
    assert!(puller.path("hyperparameter_tuning_results/trial_results.json").exists());
    let board = puller.ok(&["query", "tuning_leaderboard", "--format", "csv"]);
    assert_eq!(board.lines().count(), done + 1, "{board}");
    // Pulling again adds nothing.
    let before = puller.dump();
    let again = puller.ok(&["pull", "--storage", url.as_str()]);
    assert!(again.contains("0 trials added"), "{again}");
    let after = puller.dump();
    let strip = |d: &str| d.lines().filter(|l| !l.starts_with("pulled_studies")).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&before), strip(&after));
    // A pulled study grows on the server, not here; pulling the grown study adds the new trials.
    let err = puller.fails(&["tune", "--study", "shared", "--trials", "20"]);
    assert!(err.contains("was pulled from") && err.contains("--storage"), "{err}");
    first.ok(&args("16", &[]).iter().map(String::as_str).collect::<Vec<_>>());
    let grown = server_trials(&pg, "shared", "shared");
    assert!(grown.len() > trials.len(), "{grown:?}");
    let out = puller.ok(&["pull", "--storage", url.as_str(), "--study", "shared"]);
    assert!(out.contains(&format!("{} trials added", grown.len() - trials.len())), "{out}");
    let here: i64 = puller.sql_one("SELECT count(*) FROM trials WHERE study_name = 'shared'");
    assert_eq!(here as usize, grown.len());
}

#[test]
fn trial_numbers_are_unique_only_with_the_study_lock_which_the_negative_control_leaves_out() {
    use hptune::store::server::{insert_trial, lock_study, Server};
    let pg = PgServer::start();
    let url = pg.database("locks");
    Server::connect(url.as_str(), 120.0).unwrap();
    let mut c = pg.client("locks");
    c.batch_execute("INSERT INTO studies (study_name) VALUES ('with'), ('without')").unwrap();
    for (study, locked) in [("with", true), ("without", false)] {
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    let mut c = pg.client("locks");
                    for _ in 0..40 {
                        let mut tx = c.transaction().unwrap();
                        let id: i32 = tx
                            .query_one("SELECT study_id FROM studies WHERE study_name = $1", &[&study])
                            .unwrap()
                            .get(0);
                        if locked {
                            lock_study(&mut tx, study).unwrap();
                        }
                        insert_trial(&mut tx, id, "RUNNING").unwrap();
                        tx.commit().unwrap();
                    }
                });
            }
        });
    }
    let mut distinct = |study: &str| -> (i64, i64) {
        let r = c
            .query_one(
                "SELECT count(*), count(DISTINCT number) FROM trials JOIN studies USING (study_id) WHERE study_name = $1",
                &[&study],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(distinct("with"), (240, 240));
    let (rows, numbers) = distinct("without");
    assert_eq!(rows, 240);
    assert!(numbers < 240, "without the study lock, concurrent writers take the same numbers ({numbers} distinct)");
}

#[test]
fn a_server_with_another_optuna_schema_or_a_bad_url_is_refused_and_nothing_is_written() {
    let env = Env::new();
    let pg = PgServer::start();
    let url = pg.database("old");
    pg.client("old")
        .batch_execute(
            "CREATE TABLE version_info (version_info_id integer PRIMARY KEY, schema_version integer, library_version text);
             INSERT INTO version_info VALUES (1, 11, '3.0.0');
             CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
             INSERT INTO alembic_version VALUES ('v3.0.0.d');",
        )
        .unwrap();
    let err = env.fails(&["tune", "--storage", url.as_str(), "--trials", "2"]);
    assert!(err.contains("schema version 11") && err.contains("optuna storage upgrade"), "{err}");
    let tables: i64 = pg
        .client("old")
        .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 2, "nothing was added to the other schema");
    let err = env.fails(&["tune", "--storage", "sqlite:///x.db", "--trials", "2"]);
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    let err = env.fails(&["pull", "--storage", &pg.url("missing")]);
    assert!(err.contains("missing"), "{err}");
}

/// A study's trials on the server with their parameters and hptune's retry attributes:
/// number -> (state, params as {name: internal value}, failed_trial, retry_history).
fn trials_with_params(pg: &PgServer, db: &str, study: &str) -> BTreeMap<i32, (String, BTreeMap<String, f64>, Json)> {
    let mut c = pg.client(db);
    let mut out = BTreeMap::new();
    if !has_schema(&mut c) {
        return out;
    }
    for r in c
        .query(
            "SELECT t.trial_id, t.number, t.state::text FROM trials t JOIN studies s USING (study_id)
             WHERE s.study_name = $1 ORDER BY t.number",
            &[&study],
        )
        .unwrap()
    {
        let id: i32 = r.get(0);
        let params = c
            .query("SELECT param_name, param_value FROM trial_params WHERE trial_id = $1", &[&id])
            .unwrap()
            .iter()
            .map(|p| (p.get::<_, String>(0), p.get::<_, f64>(1)))
            .collect();
        let attrs: serde_json::Map<String, Json> = c
            .query(
                "SELECT key, value_json FROM trial_system_attributes WHERE trial_id = $1 AND key IN ('failed_trial', 'retry_history')",
                &[&id],
            )
            .unwrap()
            .iter()
            .map(|a| (a.get::<_, String>(0), serde_json::from_str(a.get::<_, &str>(1)).unwrap()))
            .collect();
        out.insert(r.get(1), (r.get(2), params, Json::Object(attrs)));
    }
    out
}

#[test]
fn a_killed_worker_s_trial_goes_stale_and_is_failed_and_retried_with_its_parameters_nothing_finished_lost() {
    let pg = PgServer::start();
    let url = pg.database("kills");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "4", "--days", "1200", "--seed", "3", "--name", "s"]);
    let space = env.write("space.toml", "[model_type]\ntype = \"categorical\"\nchoices = [\"gru\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 32\nhigh = 64\nstep = 32\n");
    let args = [
        "tune",
        "--storage",
        url.as_str(),
        "--study",
        "k",
        "--trials",
        "3",
        "--epochs",
        "40",
        "--no-pruning",
        "--heartbeat-interval",
        "1",
    ];
    let mut first = env
        .cmd()
        .args(args)
        .args(["--dataset", "s", "--space", space.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the worker (the hptune process itself) once its first trial has its parameters.
    let start = std::time::Instant::now();
    let running = loop {
        let trials = trials_with_params(&pg, "kills", "k");
        if let Some((n, t)) = trials.iter().find(|(_, t)| t.0 == "RUNNING" && !t.1.is_empty()) {
            break (*n, t.1.clone());
        }
        assert!(start.elapsed().as_secs() < 60, "no trial started: {trials:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let finished_before: Vec<i32> =
        trials_with_params(&pg, "kills", "k").into_iter().filter(|(_, t)| t.0 == "COMPLETE").map(|(n, _)| n).collect();
    // Six heartbeat intervals later the trial is stale: the next worker fails it and runs it again.
    // It is started without --heartbeat-interval (20 s, a grace of 120 s): the study keeps the
    // interval it was created with, so one study has one grace.
    std::thread::sleep(std::time::Duration::from_secs(7));
    let second = env.cmd().args(&args[..args.len() - 2]).output().unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{log}");
    assert!(log.contains("keeps its heartbeat interval of 1 s (grace 6 s), not --heartbeat-interval 20"), "{log}");
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(said.contains(&format!("marked orphaned RUNNING trials [{}]", running.0)), "{said}\n{log}");
    let trials = trials_with_params(&pg, "kills", "k");
    assert_eq!(trials[&running.0].0, "FAIL", "{trials:?}");
    let retry = trials
        .values()
        .find(|t| t.2.get("failed_trial") == Some(&Json::from(running.0)))
        .unwrap_or_else(|| panic!("no retry of trial {}: {trials:?}", running.0));
    assert_eq!(retry.2["retry_history"], serde_json::json!([running.0]));
    assert_eq!(retry.1, running.1, "the retry runs the same parameters");
    assert_eq!(retry.0, "COMPLETE");
    for n in finished_before {
        assert_eq!(trials[&n].0, "COMPLETE", "finished trial {n} kept");
    }
    let done = trials.values().filter(|t| t.0 == "COMPLETE").count();
    assert_eq!(done, 3, "the budget is met: {trials:?}");
    let numbers: Vec<i32> = trials.keys().copied().collect();
    assert_eq!(numbers, (0..trials.len() as i32).collect::<Vec<_>>());
}

#[test]
fn a_trial_enqueued_from_python_runs_with_its_parameters_and_a_server_in_tokyo_fails_no_live_trial() {
    // A server whose time zone is not UTC: heartbeats and their age use one clock.
    let pg = PgServer::start_with(&["timezone=Asia/Tokyo"]);
    let url = pg.database("queue");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "1200", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write("space.toml", SPACE).to_string_lossy().into_owned();
    let base = [
        "tune",
        "--storage",
        url.as_str(),
        "--study",
        "q",
        "--epochs",
        "15",
        "--no-pruning",
        "--heartbeat-interval",
        "1",
    ];
    let mut first = base.to_vec();
    first.extend(["--trials", "3", "--dataset", "s", "--space", space.as_str()]);
    env.ok(&first);
    let enqueue = r#"
import sys, optuna
s = optuna.load_study(study_name="q", storage=sys.argv[1].replace("postgresql://", "postgresql+psycopg2://"))
s.enqueue_trial({"model_type": "gru", "hidden_size": 24, "learning_rate": 0.005, "seq_len": 4})
"#;
    let out = std::process::Command::new(python()).args(["-c", enqueue, url.as_str()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // While the next trials run, Optuna's own stale check (grace 6 s) finds nothing to fail.
    let worker =
        env.cmd().args(base).args(["--trials", "6"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let check = r#"
import sys, time, optuna
storage = optuna.storages.RDBStorage(sys.argv[1].replace("postgresql://", "postgresql+psycopg2://"), heartbeat_interval=1, grace_period=6)
s = optuna.load_study(study_name="q", storage=storage)
seen, start = 0, time.time()
while seen < 20 and time.time() - start < 60:
    optuna.storages.fail_stale_trials(s)
    trials = s.get_trials(deepcopy=False)
    seen += any(t.state.name == "RUNNING" for t in trials)
    if sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) >= 6:
        break
    time.sleep(0.1)
print(seen)
"#;
    let checker = std::process::Command::new(python())
        .args(["-c", check, url.as_str()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropped connections (a server restart, a network blip) cost the worker nothing: they are
    // cut while the worker is in a trial.
    let start = std::time::Instant::now();
    while !trials_with_params(&pg, "queue", "q").iter().any(|(n, t)| *n >= 3 && t.0 == "RUNNING") {
        assert!(start.elapsed().as_secs() < 60, "the worker never started a trial");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dropped: i64 = pg
        .client("queue")
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'hptune'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(dropped >= 1, "the worker holds a connection named hptune");
    let out = checker.wait_with_output().unwrap();
    assert!(out.status.success(), "optuna: {}", String::from_utf8_lossy(&out.stderr));
    let seen: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(seen > 0, "Optuna's stale check ran while hptune's trials were live");
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trials = trials_with_params(&pg, "queue", "q");
    assert!(trials.values().all(|t| t.0 != "FAIL"), "no live trial was failed: {trials:?}");
    let enqueued = &trials[&3];
    assert!(enqueued.0 == "COMPLETE" || enqueued.0 == "PRUNED", "{trials:?}");
    // Internal values: gru is choice 1 of ["mlp", "gru"].
    let expected: BTreeMap<String, f64> =
        [("model_type", 1.0), ("hidden_size", 24.0), ("learning_rate", 0.005), ("seq_len", 4.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(enqueued.1, expected);
    assert_eq!(trials.len(), 6);
}

#[test]
fn the_pipeline_tunes_on_the_server_and_runs_the_later_stages_here() {
    let pg = PgServer::start();
    let url = pg.database("pipe");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "5", "--signal", "0.4", "--name", "p"]);
    let out = crate::pipeline::pipeline(&env, "p", &["--storage", url.as_str(), "--study", "ps"]);
    assert!(out.contains("backtest"), "{out}");
    let on_server = server_trials(&pg, "pipe", "ps");
    assert_eq!(on_server.iter().filter(|t| t.1 == "COMPLETE" || t.1 == "PRUNED").count(), 4, "{on_server:?}");
    let here: i64 = env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'ps'");
    assert_eq!(here as usize, on_server.len(), "the study was pulled");
    let selected: String = env.sql_one("SELECT study_name FROM selections");
    assert_eq!(selected, "ps");
    let backtests: i64 = env.sql_one("SELECT count(*) FROM backtests");
    assert_eq!(backtests, 1);
}

/// A claim whose COMMIT acknowledgement is lost (the session ends right after it, injected) is
/// retried and finds the trial it made: no second trial, no RUNNING row left, the budget exact.
/// An enqueued trial outside the space (64.0 for an int, a value past the range) fails alone,
/// with a reason naming the parameter and the space, and the worker goes on.
#[test]
fn a_lost_claim_acknowledgement_and_a_bad_enqueued_trial_cost_nothing_else() {
    let pg = PgServer::start();
    let url = pg.database("acks");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "600", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write("space.toml", SPACE).to_string_lossy().into_owned();
    let args = |trials: &'static str| {
        ["tune", "--storage", url.as_str(), "--study", "a", "--epochs", "2", "--dataset", "s", "--space", &space]
            .iter()
            .map(|s| s.to_string())
            .chain(["--trials".to_string(), trials.to_string()])
            .collect::<Vec<_>>()
    };
    let out = env.cmd().args(args("3")).env("HPTUNE_INJECT", "lost-claim-ack").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("trying again"), "no acknowledgement was lost: {stderr}");
    let trials = server_trials(&pg, "acks", "a");
    assert_eq!(trials, (0..3).map(|n| (n, "COMPLETE".to_string())).collect::<Vec<_>>());

    let enqueue = r#"
import sys, optuna
s = optuna.load_study(study_name="a", storage=sys.argv[1].replace("postgresql://", "postgresql+psycopg2://"))
s.enqueue_trial({"hidden_size": 64.0}, skip_if_exists=False)
s.enqueue_trial({"seq_len": 99})
"#;
    let out = std::process::Command::new(python()).args(["-c", enqueue, url.as_str()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.cmd().args(args("5")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the worker stopped: {stderr}");
    let trials = trials_with_params(&pg, "acks", "a");
    let failed: Vec<_> = trials.values().filter(|t| t.0 == "FAIL").collect();
    assert_eq!(failed.len(), 2, "{trials:?}");
    assert!(stderr.contains("enqueued parameter hidden_size = 64.0") && stderr.contains("seq_len = 99"), "{stderr}");
    assert_eq!(trials.values().filter(|t| t.0 == "COMPLETE" || t.0 == "PRUNED").count(), 5, "{trials:?}");
    assert_eq!(trials.values().filter(|t| t.0 == "RUNNING").count(), 0, "{trials:?}");
}

/// `pull` never writes among a running study's files: into the folder a local study is writing,
/// it is refused, and that study's files stay as they were; into its own folder it goes on.
#[test]
fn pull_beside_a_running_study_leaves_its_files_alone() {
    let pg = PgServer::start();
    let url = pg.database("beside");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "600", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write("space.toml", SPACE).to_string_lossy().into_owned();
    let remote = ["tune", "--storage", url.as_str(), "--study", "r", "--trials", "2", "--epochs", "2"];
    env.ok(&[&remote[..], &["--dataset", "s", "--space", &space, "--out", "elsewhere"]].concat());
    // A local study, paused in its first trial, writing into the default folder.
    let local = env.spawn_paused(&[
        "tune",
        "--dataset",
        "s",
        "--space",
        &space,
        "--study",
        "l",
        "--trials",
        "2",
        "--epochs",
        "2",
    ]);
    let start = std::time::Instant::now();
    while env.ok(&["query", "SELECT count(*) FROM trials WHERE state = 'RUNNING'", "--format", "csv"]).lines().nth(1)
        != Some("1")
    {
        assert!(start.elapsed().as_secs() < 60, "the local study never started a trial");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let folder = env.path("hyperparameter_tuning_results");
    let files = || crate::common::tree(&folder).into_keys().collect::<Vec<_>>();
    let before = files();
    let err = env.fails(&["pull", "--storage", url.as_str(), "--study", "r"]);
    assert!(err.contains("in use by a running process") && err.contains("--out"), "{err}");
    assert_eq!(files(), before, "pull wrote among the running study's files");
    env.ok(&["pull", "--storage", url.as_str(), "--study", "r", "--out", "pulled"]);
    env.resume();
    let out = local.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let studies: i64 = env.sql_one("SELECT count(*) FROM studies");
    assert_eq!(studies, 2);
}

/// When a worker dies with a trial RUNNING, the worker that remains does not stop short of the
/// budget: it waits, and once the dead worker's trial goes stale (six heartbeat intervals) it takes
/// the trial queued again and meets the budget, leaving nothing RUNNING.
#[test]
fn a_survivor_meets_the_budget_a_dead_worker_left_short() {
    let pg = PgServer::start();
    let url = pg.database("survive");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "600", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write("space.toml", SPACE).to_string_lossy().into_owned();
    let args = [
        "tune",
        "--storage",
        url.as_str(),
        "--study",
        "v",
        "--trials",
        "4",
        "--epochs",
        "2",
        "--heartbeat-interval",
        "1",
        "--dataset",
        "s",
        "--space",
        space.as_str(),
    ];
    let mut dying = env.spawn_paused(&args);
    let start = std::time::Instant::now();
    while !trials_with_params(&pg, "survive", "v").values().any(|t| t.0 == "RUNNING" && !t.1.is_empty()) {
        assert!(start.elapsed().as_secs() < 60, "the first worker never started a trial");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    dying.kill().unwrap();
    dying.wait().unwrap();
    let out = env.cmd().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let trials = trials_with_params(&pg, "survive", "v");
    let count = |s: &str| trials.values().filter(|t| t.0 == s).count();
    assert_eq!((count("COMPLETE") + count("PRUNED"), count("RUNNING"), count("FAIL")), (4, 0, 1), "{trials:?}");
}

#[test]
fn the_server_heartbeat_goes_on_while_a_reader_holds_the_local_file() {
    let pg = PgServer::start();
    let url = pg.database("held");
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "4", "--days", "1200", "--seed", "3", "--name", "s"]);
    let space = env.write("space.toml", "[model_type]\ntype = \"categorical\"\nchoices = [\"gru\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 32\nhigh = 64\nstep = 32\n");
    // A grace of 6 s (heartbeat every second); training paused, so the trial is running throughout.
    let worker = env.spawn_paused(&[
        "tune",
        "--storage",
        url.as_str(),
        "--study",
        "h",
        "--trials",
        "1",
        "--epochs",
        "3",
        "--no-pruning",
        "--heartbeat-interval",
        "1",
        "--dataset",
        "s",
        "--space",
        space.to_str().unwrap(),
    ]);
    let mut client = pg.client("held");
    let age = |c: &mut postgres::Client| -> Option<f64> {
        c.query_one(
            "SELECT EXTRACT(EPOCH FROM now()::timestamp - max(h.heartbeat))::float8 FROM trial_heartbeats h
             JOIN trials t USING (trial_id) WHERE t.state = 'RUNNING'",
            &[],
        )
        .ok()
        .and_then(|r| r.get::<_, Option<f64>>(0))
    };
    let start = std::time::Instant::now();
    while age(&mut client).is_none() {
        assert!(start.elapsed().as_secs() < 60, "no trial started on the server");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Another process holds the worker's local file for longer than the grace: the local
    // heartbeat cannot be written, the server's must go on.
    let holder = crate::common::hold(&env.db);
    let held = std::time::Instant::now();
    let mut worst: f64 = 0.0;
    while held.elapsed().as_secs() < 9 {
        worst = worst.max(age(&mut client).expect("the trial is still running"));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(holder);
    assert!(worst < 3.0, "the server heartbeat stopped for {worst:.1} s while the local file was held");
    env.resume();
    let out = worker.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let states = server_trials(&pg, "held", "h");
    assert_eq!(states, vec![(0, "COMPLETE".to_string())], "{states:?}");
}
