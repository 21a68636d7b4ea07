//! Interruption and contention: Ctrl-C and `kill` are recorded states, `kill -9` at random loses
//! nothing, and a process that holds the file for longer than `--lock-timeout` costs no trial or
//! fold. Signals go to the hptune process itself (spawned directly, no shell).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::common::{hold, Env};

/// GRU trials on 8 tickers: epochs of a second or so, so that a signal lands inside a trial (the
/// fused GRU trains about 3x faster than the step-by-step one this was first sized for, hence the
/// wider layers).
const SLOW: &str = "[model_type]\ntype = \"categorical\"\nchoices = [\"gru\"]\n\n\
                    [hidden_size]\ntype = \"int\"\nlow = 96\nhigh = 160\n\n[seq_len]\ntype = \"int\"\nlow = 15\nhigh = 25\n";
fn setup(space: &str, tickers: &str, days: &str) -> (Env, String) {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", tickers, "--days", days, "--seed", "5", "--signal", "0.3", "--name", "s"]);
    let space = env.write("space.toml", space).to_string_lossy().into_owned();
    (env, space)
}

fn tune_args<'a>(space: &'a str, study: &'a str, trials: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec!["tune", "--dataset", "s", "--space", space, "--study", study, "--trials", trials, "--epochs", epochs]
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    env.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn count(env: &Env, sql: &str) -> i64 {
    let out = env.ok(&["query", sql, "--format", "csv"]);
    out.lines().nth(1).unwrap_or("0").parse().unwrap_or(0)
}

/// Waits until `sql` counts at least `n` (or the child ends, or a minute passes).
fn wait_for(env: &Env, child: &mut Child, sql: &str, n: i64) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if count(env, sql) >= n {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn ctrl_c_records_interrupted_trials_exits_130_and_the_study_resumes() {
    let (env, space) = setup(SLOW, "8", "1500");
    let args = [tune_args(&space, "c", "6", "3"), vec!["--no-pruning", "--jobs", "2"]].concat();
    let mut child = spawn(&env, &args);
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM trials", 2), "no trials started");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'RUNNING'"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE status = 'running'"), 0);
    let interrupted = count(&env, "SELECT count(*) FROM trials WHERE state = 'FAIL' AND reason = 'interrupted'");
    assert!(interrupted >= 1, "{}", env.ok(&["query", "SELECT number, state, reason FROM trials"]));
    assert_eq!(
        count(&env, "SELECT count(*) FROM training_runs WHERE status = 'failed' AND reason = 'interrupted'"),
        interrupted
    );
    // Re-running continues until the budget is met.
    env.ok(&args);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"), 6);
}

#[test]
fn sigterm_during_train_records_the_run_interrupted_and_exits_143() {
    let (env, _) = setup(SLOW, "8", "1500");
    let config = env.write(
        "c.json",
        r#"{"model_type": "gru", "hidden_size": 32, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.001,
            "weight_decay": 0.0, "batch_size": 32, "seq_len": 10, "epochs": 500, "patience": 500}"#,
    );
    let mut child = spawn(&env, &["train", "--dataset", "s", "--config", config.to_str().unwrap()]);
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM epoch_metrics", 2), "no epoch ran");
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, reason): (String, String) = {
        let c = crate::common::read_only(&env.db);
        c.query_row("SELECT status, reason FROM training_runs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    assert_eq!((status.as_str(), reason.as_str()), ("failed", "interrupted"));
    let epochs = count(&env, "SELECT count(*) FROM epoch_metrics");
    assert!(epochs >= 2, "the finished epochs are kept");
}

#[test]
fn a_process_holding_the_file_past_the_lock_timeout_costs_no_trial_or_fold() {
    let (env, space) = setup(SLOW, "6", "1000");
    let args = [vec!["--lock-timeout", "0.5"], tune_args(&space, "h", "6", "2"), vec!["--jobs", "2"]].concat();
    let mut child = spawn(&env, &args);
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM trials", 1), "no trial started");
    // Longer than the timeout, and long enough for the waiting message (every 10 s) even when the
    // worker first needs the file a few seconds into the hold (at the end of an epoch).
    let holder = hold(&env.db);
    std::thread::sleep(Duration::from_millis(14_000));
    drop(holder);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting") && stderr.contains(&format!("PID {}", std::process::id())), "{stderr}");
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'FAIL'"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"), 6);

    let mut child = spawn(
        &env,
        &["--lock-timeout", "0.5", "extend", "--top-n", "2", "--folds", "2", "--epochs", "3", "--jobs", "2"],
    );
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM cv_folds", 1), "no extended run started");
    let holder = hold(&env.db);
    std::thread::sleep(Duration::from_millis(2_000));
    drop(holder);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count(&env, "SELECT count(*) FROM cv_folds WHERE status = 'finished'"), 4);
}

#[test]
fn a_late_result_does_not_overwrite_the_state_another_process_recorded() {
    let (env, space) = setup(SLOW, "8", "1500");
    let args = [tune_args(&space, "l", "1", "4"), vec!["--no-pruning"]].concat();
    let mut child = spawn(&env, &args);
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM trials", 1), "no trial started");
    // Another process decides trial 0 is over (as an orphan sweep would) while it still trains.
    {
        let c = hold(&env.db);
        c.execute("UPDATE trials SET state = 'FAIL', reason = 'marked by another process' WHERE number = 0", [])
            .unwrap();
    }
    // The epochs of a running trial are visible to others within a few seconds.
    let running_epochs =
        "SELECT count(*) FROM epoch_metrics JOIN training_runs USING (run_id) WHERE status = 'running'";
    assert!(wait_for(&env, &mut child, running_epochs, 1), "no epoch of the running trial became visible");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("trial 0 was already marked FAIL"), "{stderr}");
    let (state, reason): (String, String) = {
        let c = crate::common::read_only(&env.db);
        c.query_row("SELECT state, reason FROM trials WHERE number = 0", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    assert_eq!(state, "FAIL");
    assert!(
        reason.starts_with("marked by another process; late result after the trial was marked FAIL: COMPLETE"),
        "{reason}"
    );
}

/// A live worker is judged by its process, not by a heartbeat it could not write: a trial whose
/// heartbeat is an hour old (as after a reader held the file past the grace) while its process
/// lives is not failed by a second worker or by a later stage, and finishes once.
#[test]
fn a_live_worker_with_an_old_heartbeat_loses_no_trial_or_run() {
    let (env, space) = setup(SLOW, "4", "600");
    let args = [tune_args(&space, "h", "3", "2"), vec!["--no-pruning"]].concat();
    let mut first = env.spawn_paused(&args);
    assert!(wait_for(&env, &mut first, "SELECT count(*) FROM trials WHERE state = 'RUNNING'", 1), "no trial started");
    {
        let c = hold(&env.db);
        c.execute_batch(
            "UPDATE trials SET heartbeat_at = heartbeat_at - INTERVAL 1 HOUR WHERE state = 'RUNNING';
             UPDATE training_runs SET heartbeat_at = heartbeat_at - INTERVAL 1 HOUR WHERE status = 'running';",
        )
        .unwrap();
    }
    // A second worker on the study, and a later stage, each sweep for orphans first.
    let out = env.cmd().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = env.write(
        "c.json",
        r#"{"model_type": "mlp", "hidden_size": 8, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
            "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 1}"#,
    );
    env.ok(&["train", "--config", config.to_str().unwrap(), "--dataset", "s", "--out", "fm"]);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'FAIL'"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'RUNNING'"), 1);
    env.resume();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'COMPLETE'"), 3);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state <> 'COMPLETE'"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE status <> 'finished' OR reason IS NOT NULL"), 0);
}

/// The case as it was met: a reader holds the file for 150 s, past the 120 s heartbeat grace,
/// while a study trains; a second worker on the study and an `extend` of a finished study start
/// during the hold and wait for the file. No trial, run or fold fails, and every finish is
/// recorded once.
#[test]
fn a_reader_holding_the_file_past_the_grace_costs_no_trial_run_or_fold() {
    let (env, space) = setup(SLOW, "4", "600");
    env.ok(&tune_args(&space, "done", "2", "1"));
    let args = [tune_args(&space, "h", "3", "2"), vec!["--no-pruning"]].concat();
    let mut first = env.spawn_paused(&args);
    assert!(wait_for(&env, &mut first, "SELECT count(*) FROM trials WHERE study_name = 'h' AND state = 'RUNNING'", 1));
    let holder = hold(&env.db);
    let held = Instant::now();
    let second = spawn(&env, &args);
    let extend = spawn(&env, &["extend", "--study", "done", "--top-n", "1", "--folds", "2", "--epochs", "2"]);
    while held.elapsed() < Duration::from_secs(150) {
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(holder);
    env.resume();
    for child in [first, second, extend] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state <> 'COMPLETE'"), 0);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE study_name = 'h'"), 3);
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE status <> 'finished' OR reason IS NOT NULL"), 0);
    // One run per trial and per fold: nothing was run twice.
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE stage = 'tune'"), 5);
    assert_eq!(
        count(&env, "SELECT count(*) FROM cv_folds WHERE status = 'finished' AND run_id NOT LIKE '%attempt%'"),
        2
    );
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE stage = 'extend'"), 2);
    assert_eq!(count(&env, "SELECT count(*) FROM extended_runs WHERE status = 'finished'"), 1);
}

/// Chaos: `kill -9` at random moments of `tune --jobs 2` (5 times) and `extend` (2 times), then
/// resume: the database opens every time, no finished trial or fold is lost or changed, and the
/// budget is met exactly. A fast machine may finish the work before a kill: the study's budget
/// then grows by 8 trials (or a new extended run starts), so every kill lands in running work
/// whatever the machine's speed. `benches/chaos.py` runs the same with 50 kills.
#[test]
fn random_kills_lose_no_finished_trial_or_fold() {
    let (env, space) = setup(SLOW, "6", "1000");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut budget = 16;
    let finished_trials = "SELECT number, state, value FROM trials WHERE state IN ('COMPLETE', 'PRUNED') ORDER BY 1";
    let mut kills = 0;
    while kills < 5 {
        let before = env.ok(&["query", finished_trials, "--format", "csv"]);
        let trials = budget.to_string();
        let mut child = spawn(&env, &[tune_args(&space, "k", &trials, "2"), vec!["--jobs", "2"]].concat());
        std::thread::sleep(Duration::from_millis(rng.gen_range(500..2500)));
        if child.try_wait().unwrap().is_some() {
            budget += 8;
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let after = env.ok(&["query", finished_trials, "--format", "csv"]);
        for line in before.lines() {
            assert!(after.contains(line), "kill {kills}: finished trial {line} changed or was lost:\n{after}");
        }
    }
    let trials = budget.to_string();
    env.ok(&[tune_args(&space, "k", &trials, "2"), vec!["--jobs", "2"]].concat());
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"), budget);
    assert_eq!(count(&env, "SELECT count(*) FROM trials WHERE state = 'RUNNING'"), 0);

    let extend = ["extend", "--top-n", "2", "--folds", "3", "--epochs", "4", "--jobs", "2"];
    let finished_folds =
        "SELECT config_rank, fold, run_id, val_accuracy FROM cv_folds WHERE status = 'finished' ORDER BY ALL";
    let newest = "SELECT extended_run_id FROM extended_runs ORDER BY started_at DESC LIMIT 1";
    let mut child = spawn(&env, &extend);
    let mut extend_kills = 0;
    while extend_kills < 2 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1200)));
        if child.try_wait().unwrap().is_some() {
            child = spawn(&env, &extend);
            continue;
        }
        let before = env.ok(&["query", finished_folds, "--format", "csv"]);
        child.kill().unwrap();
        child.wait().unwrap();
        extend_kills += 1;
        let after = env.ok(&["query", finished_folds, "--format", "csv"]);
        assert!(after.starts_with(before.lines().next().unwrap()));
        for line in before.lines() {
            assert!(after.contains(line), "finished fold {line} lost:\n{after}");
        }
        let id: String = env.sql_one(newest);
        child = spawn(&env, &["extend", "--resume", &id, "--jobs", "2"]);
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id: String = env.sql_one(newest);
    let folds = format!("SELECT count(*) FROM cv_folds WHERE status = 'finished' AND extended_run_id = '{id}'");
    assert_eq!(count(&env, &folds), 6);
    env.ok(&["analyze"]);
}

#[test]
fn a_folder_a_running_study_writes_is_never_moved_aside_and_kill_9_frees_it() {
    let (env, space) = setup(SLOW, "8", "400");
    let mut running = spawn(&env, &tune_args(&space, "a", "6", "4"));
    assert!(wait_for(&env, &mut running, "SELECT count(*) FROM trials WHERE state = 'RUNNING'", 1));
    // A new study in the same folder would move it aside under the running one: refused, unrecorded.
    let err = env.fails(&tune_args(&space, "b", "2", "1"));
    assert!(err.contains("being written by a running hptune process") && err.contains("--out"), "{err}");
    assert_eq!(count(&env, "SELECT count(*) FROM studies WHERE study_name = 'b'"), 0);
    assert!(env.path("hyperparameter_tuning_results/checkpoints/a").is_dir());
    // The claim dies with its process, even by SIGKILL: then the folder is set aside as usual.
    running.kill().unwrap();
    running.wait().unwrap();
    env.ok(&tune_args(&space, "b", "2", "1"));
    let kept: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hyperparameter_tuning_results."))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(env.path(&kept[0]).join("checkpoints/a").is_dir());
}

#[test]
fn a_killed_train_is_recorded_as_interrupted_by_the_next_stage() {
    let (env, _) = setup(SLOW, "8", "400");
    let cfg = env.write(
        "gru.json",
        r#"{"model_type": "gru", "hidden_size": 64, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
            "weight_decay": 0.0, "batch_size": 32, "seq_len": 20, "epochs": 50, "patience": 50}"#,
    );
    let cfg = cfg.to_str().unwrap();
    let mut child = spawn(&env, &["train", "--config", cfg, "--dataset", "s", "--out", "a"]);
    assert!(wait_for(&env, &mut child, "SELECT count(*) FROM epoch_metrics", 1));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE status = 'running'"), 1);
    // The next stage sees the run's process is gone (a PID of this machine that no longer exists).
    let mut short: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cfg).unwrap()).unwrap();
    short["epochs"] = serde_json::json!(1);
    let short = env.write("short.json", &short.to_string());
    env.ok(&["train", "--config", short.to_str().unwrap(), "--dataset", "s", "--out", "b"]);
    let interrupted = count(
        &env,
        "SELECT count(*) FROM training_runs WHERE status = 'failed' AND starts_with(reason, 'interrupted: its process')",
    );
    assert_eq!(interrupted, 1);
    assert_eq!(count(&env, "SELECT count(*) FROM training_runs WHERE status = 'finished'"), 1);
}
