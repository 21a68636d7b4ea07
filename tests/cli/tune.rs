//! `hptune tune`: phases, records, exports (checked with the real optuna), workers, resume.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::Env;

/// A small space of every kind of parameter (also used by the study-server tests).
pub(crate) const SPACE: &str = r#"
[model_type]
type = "categorical"
choices = ["mlp", "gru"]

[hidden_size]
type = "int"
low = 8
high = 32
step = 8

[learning_rate]
type = "float"
low = 1e-4
high = 1e-2
log = true

[seq_len]
type = "int"
low = 3
high = 8
"#;

fn setup() -> (Env, String) {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write("space.toml", SPACE).to_string_lossy().into_owned();
    (env, space)
}

fn tune_args<'a>(space: &'a str, study: &'a str, trials: &'a str) -> Vec<&'a str> {
    vec!["tune", "--dataset", "s", "--space", space, "--study", study, "--trials", trials, "--epochs", "3"]
}

fn states(env: &Env, study: &str) -> String {
    env.ok(&[
        "query",
        &format!("SELECT number, phase, state, sampler FROM trials WHERE study_name = '{study}' ORDER BY number"),
        "--format",
        "csv",
    ])
}

#[test]
fn a_study_runs_three_phases_and_exports_what_optuna_reads() {
    let (env, space) = setup();
    env.ok(&tune_args(&space, "st", "10"));
    let csv = states(&env, "st");
    let phases: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(
        phases,
        [
            "random", "random", "random", "bayesian", "bayesian", "bayesian", "bayesian", "bayesian", "finetune",
            "finetune"
        ]
    );
    assert!(!csv.contains("RUNNING") && !csv.contains("FAIL"), "{csv}");
    // `auto` (the default) picks the GP for this 4-parameter space.
    let samplers: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(samplers, [&["halton"; 3][..], &["gp"; 7][..]].concat());
    assert_eq!(env.sql_one::<String>("SELECT sampler FROM studies WHERE study_name = 'st'"), "auto");

    let dir = env.path("hyperparameter_tuning_results");
    for f in ["trial_results.json", "optimization_history.json", "optimization_history.png", "optimization_study.db"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert_eq!(&std::fs::read(dir.join("optimization_history.png")).unwrap()[..4], b"\x89PNG");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trial_results.json")).unwrap()).unwrap();
    let best_db: f64 = env.sql_one("SELECT max(value) FROM trials WHERE state = 'COMPLETE'");
    assert_eq!(results["best_trial"]["value"].as_f64().unwrap(), best_db);
    let ckpt = results["best_trial"]["checkpoint"]["path"].as_str().unwrap();
    assert!(std::path::Path::new(ckpt).exists(), "{ckpt}");

    // The real optuna opens the export: same trials, best value and parameters.
    let script = r#"
import sys, json, optuna
study = optuna.load_study(study_name="st", storage="sqlite:///" + sys.argv[1])
print(json.dumps({"n": len(study.trials), "best_value": study.best_value, "best_params": study.best_params,
                  "states": sorted({t.state.name for t in study.trials}), "phases": [t.user_attrs["phase"] for t in study.trials],
                  "samplers": [t.system_attrs["hptune:sampler"] for t in study.trials],
                  "study_sampler": optuna.storages.RDBStorage("sqlite:///" + sys.argv[1]).get_study_system_attrs(study._study_id)["hptune:sampler"]}))
from optuna_dashboard import wsgi
from wsgiref.util import setup_testing_defaults
app = wsgi("sqlite:///" + sys.argv[1])
for path in ["/api/studies", "/api/studies/1"]:
    env = {}
    setup_testing_defaults(env)
    env["PATH_INFO"] = path
    status = []
    body = b"".join(app(env, lambda s, h, *a: status.append(s)))
    print(path, status[0])
"#;
    let out = std::process::Command::new(crate::interop::python())
        .arg("-c")
        .arg(script)
        .arg(dir.join("optimization_study.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["n"], 10);
    assert_eq!(first["best_value"].as_f64().unwrap(), best_db);
    let best_params = &results["best_trial"]["params"];
    for (k, v) in first["best_params"].as_object().unwrap() {
        assert_eq!(v.as_f64().map(|x| x.to_string()), best_params[k].as_f64().map(|x| x.to_string()).or(None), "{k}");
        if v.is_string() {
            assert_eq!(v, &best_params[k]);
        }
    }
    assert_eq!(first["phases"][0], "random");
    assert_eq!(first["samplers"], serde_json::json!(samplers));
    assert_eq!(first["study_sampler"], "auto");
    assert!(text.contains("/api/studies 200") && text.contains("/api/studies/1 200"), "{text}");

    // The views answer the history questions.
    let board = env.ok(&["query", "tuning_leaderboard", "--format", "csv"]);
    assert!(board.lines().nth(1).unwrap().starts_with("st,1,"), "{board}");
}

#[test]
fn the_same_seed_gives_the_same_trials() {
    let (env, space) = setup();
    env.ok(&[&tune_args(&space, "a", "5")[..], &["--out", "ra"]].concat());
    env.ok(&[&tune_args(&space, "b", "5")[..], &["--out", "rb"]].concat());
    let rows = |s: &str| -> String {
        env.ok(&["query", &format!("SELECT t.number, t.value, string_agg(p.name || '=' || p.value_json, ' ' ORDER BY p.name) FROM trials t JOIN trial_params p USING (study_name, number) WHERE study_name = '{s}' GROUP BY ALL ORDER BY 1"), "--format", "csv"])
    };
    assert_eq!(rows("a"), rows("b"));
}

/// `--sampler` is kept with the study: a resumed study goes on with its own, whatever the flag
/// says; each trial records what drew it; a name that is no sampler is refused before anything
/// is written.
#[test]
fn the_sampler_is_kept_per_study_and_recorded_per_trial() {
    let (env, space) = setup();
    env.ok(&[&tune_args(&space, "t", "5")[..], &["--sampler", "tpe"]].concat());
    env.ok(&[&tune_args(&space, "t", "7")[..], &["--sampler", "gp"]].concat());
    let samplers = |study: &str| {
        env.ok(&[
            "query",
            &format!("SELECT string_agg(sampler, ' ' ORDER BY number) FROM trials WHERE study_name = '{study}'"),
            "--format",
            "csv",
        ])
    };
    assert_eq!(samplers("t").lines().nth(1).unwrap(), "halton halton tpe tpe tpe tpe tpe");
    env.ok(&[&tune_args(&space, "g", "5")[..], &["--sampler", "gp", "--out", "g"]].concat());
    assert_eq!(samplers("g").lines().nth(1).unwrap(), "halton halton gp gp gp");
    assert_eq!(
        env.ok(&["query", "SELECT study_name, sampler FROM studies ORDER BY 1", "--format", "csv"]),
        "study_name,sampler\ng,gp\nt,tpe\n"
    );
    let before = std::fs::read(env.path("experiments.db")).unwrap();
    let err = env.fails(&[&tune_args(&space, "x", "5")[..], &["--sampler", "bayes"]].concat());
    assert!(err.contains("'bayes'") && err.contains("tpe, gp, auto"), "{err}");
    assert_eq!(std::fs::read(env.path("experiments.db")).unwrap(), before);
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    env.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn two_processes_share_a_study_without_duplicate_numbers() {
    let (env, space) = setup();
    // Create the study first so both processes join the same one.
    env.ok(&tune_args(&space, "shared", "1"));
    let args = tune_args(&space, "shared", "10");
    let (a, b) = (spawn(&env, &args), spawn(&env, &args));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let numbers: String =
        env.sql_one("SELECT string_agg(number::VARCHAR, ',' ORDER BY number) FROM trials WHERE study_name = 'shared'");
    let expected: Vec<String> = (0..numbers.split(',').count()).map(|i| i.to_string()).collect();
    assert_eq!(numbers, expected.join(","));
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'shared' AND state IN ('COMPLETE', 'PRUNED')");
    assert_eq!(finished, 10);
    let workers: i64 = env.sql_one("SELECT count(DISTINCT worker) FROM trials WHERE study_name = 'shared'");
    assert!(workers >= 2, "only {workers} worker ran trials");
}

#[test]
fn four_workers_with_a_slow_sampler_claim_unique_dense_trials_and_meet_the_budget() {
    let (env, space) = setup();
    env.ok(&tune_args(&space, "slow", "1"));
    // Each suggestion takes 300 ms more: claims sample outside the write transaction on a
    // snapshot, so four workers overlap their sampling and must still not share a number.
    let args = tune_args(&space, "slow", "13");
    let workers: Vec<Child> = (0..4)
        .map(|_| {
            env.cmd()
                .args(&args)
                .env("HPTUNE_INJECT", "slow-sampler")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in workers {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let numbers: String =
        env.sql_one("SELECT string_agg(number::VARCHAR, ',' ORDER BY number) FROM trials WHERE study_name = 'slow'");
    assert_eq!(numbers, (0..13).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'slow' AND state IN ('COMPLETE', 'PRUNED')");
    assert_eq!(finished, 13);
    let runs: i64 = env.sql_one("SELECT count(DISTINCT run_id) FROM trials WHERE study_name = 'slow'");
    assert_eq!(runs, 13, "two trials share a run");
    let workers: i64 = env.sql_one("SELECT count(DISTINCT worker) FROM trials WHERE study_name = 'slow'");
    assert!(workers >= 2, "only {workers} worker ran trials");
}

#[test]
fn a_killed_run_resumes_without_losing_finished_trials() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "10", "--days", "1500", "--seed", "9", "--name", "s"]);
    let space = env.write("space.toml", "[model_type]\ntype = \"categorical\"\nchoices = [\"gru\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 16\nhigh = 32\n");
    let space = space.to_string_lossy().into_owned();
    let args = |trials: usize| {
        let trials = trials.to_string();
        let base = ["tune", "--dataset", "s", "--space", &space, "--study", "k", "--epochs", "4", "--no-pruning"];
        [&base[..], &["--trials", &trials]].concat().into_iter().map(String::from).collect::<Vec<_>>()
    };
    let count = |sql: &str| -> usize {
        let out = env.ok(&["query", sql, "--format", "csv"]);
        out.lines().nth(1).unwrap_or("0").parse().unwrap_or(0)
    };
    let complete = "SELECT number, value FROM trials WHERE study_name = 'k' AND state = 'COMPLETE' ORDER BY number";
    // Kill (SIGKILL) during a trial at three states: the first trial, after one finished, after
    // three (the budget grows with each run). While the pause file exists, training holds at the
    // end of each epoch, so the trial is RUNNING when the kill lands however fast the machine is.
    for finished in [0, 1, 3] {
        if finished > 0 {
            env.ok(&args(finished).iter().map(String::as_str).collect::<Vec<_>>());
        }
        let args = args(finished + 1);
        let mut child = env.spawn_paused(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut running = 0;
        while running == 0 {
            assert!(child.try_wait().unwrap().is_none(), "tune ended while paused");
            std::thread::sleep(Duration::from_millis(50));
            running = count("SELECT count(*) FROM trials WHERE study_name = 'k' AND state = 'RUNNING'");
        }
        let before = env.ok(&["query", complete, "--format", "csv"]);
        assert_eq!(before.lines().count() - 1, finished, "{before}");
        child.kill().unwrap();
        child.wait().unwrap();
        env.resume();
        let after = env.ok(&["query", complete, "--format", "csv"]);
        assert_eq!(after, before, "finished trials changed");
    }
    let args = args(6);
    let out = env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'k' AND state IN ('COMPLETE', 'PRUNED')");
    assert_eq!(finished, 6, "{out}");
    let running: i64 = env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'k' AND state = 'RUNNING'");
    assert_eq!(running, 0);
    // Each kill left its running trial behind; the next run marked it.
    let orphans: i64 = env
        .sql_one("SELECT count(*) FROM trials WHERE study_name = 'k' AND state = 'FAIL' AND reason LIKE 'orphaned%'");
    assert_eq!(orphans, 3, "one orphaned trial per kill");
}

#[test]
fn failing_trials_are_recorded_and_the_study_goes_on() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "2", "--days", "200", "--seed", "1", "--name", "s"]);
    // seq_len 150 leaves too few samples: those trials fail with the reason.
    let space = env.write(
        "space.toml",
        "[seq_len]\ntype = \"categorical\"\nchoices = [4, 150]\n\n[hidden_size]\ntype = \"int\"\nlow = 4\nhigh = 8\n",
    );
    // Four Halton points over two choices: at least one of each.
    env.ok(&[
        "tune",
        "--dataset",
        "s",
        "--space",
        space.to_str().unwrap(),
        "--study",
        "f",
        "--trials",
        "4",
        "--epochs",
        "2",
        "--random-trials",
        "4",
        "--bayesian-trials",
        "0",
        "--finetune-trials",
        "0",
    ]);
    let failed: i64 =
        env.sql_one("SELECT count(*) FROM trials WHERE state = 'FAIL' AND reason LIKE '%seq_len 150 leaves%'");
    let complete: i64 = env.sql_one("SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')");
    assert!(failed >= 1, "expected failed trials");
    assert_eq!(complete, 4);
}

#[test]
fn a_bad_space_names_the_parameter() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let before = env.dump();
    let cases = [
        ("[lr]\ntype = \"float\"\nlow = 1e-3\nhigh = 1e-1\n", "parameter 'lr' is not a tunable hyperparameter"),
        ("[learning_rate]\ntype = \"float\"\nlow = 0.1\nhigh = 0.01\n", "parameter 'learning_rate': needs low < high"),
        (
            "[learning_rate]\ntype = \"float\"\nlow = 0.0\nhigh = 0.1\nlog = true\n",
            "parameter 'learning_rate': a log parameter needs low > 0",
        ),
        (
            "[hidden_size]\ntype = \"int\"\nlow = 8\nhigh = 30\nstep = 8\n",
            "parameter 'hidden_size': step must be >= 1 and divide",
        ),
        ("[model_type]\ntype = \"categorical\"\n", "parameter 'model_type': a categorical needs choices"),
        (
            "[dropout]\ntype = \"normal\"\nlow = 0.0\nhigh = 0.5\n",
            "parameter 'dropout': type must be float, int or categorical",
        ),
        ("[dropout\n", "not valid TOML"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let f = env.write(&format!("bad{i}.toml"), text);
        let err = env.fails(&["tune", "--space", f.to_str().unwrap(), "--trials", "2"]);
        assert!(err.contains(expected) && err.contains(&format!("bad{i}.toml")), "case {i}: {err}");
    }
    assert_eq!(before, env.dump());
}

#[test]
fn parallel_jobs_in_one_process_share_the_file_safely() {
    let (env, space) = setup();
    env.ok(&[&tune_args(&space, "j", "8")[..], &["--jobs", "2"]].concat());
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'j' AND state IN ('COMPLETE', 'PRUNED')");
    assert_eq!(finished, 8);
    let failed: i64 = env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'j' AND state = 'FAIL'");
    assert_eq!(failed, 0, "{}", states(&env, "j"));
    let epochs: i64 = env.sql_one("SELECT count(*) FROM epoch_metrics WHERE starts_with(run_id, 'j/')");
    assert!(epochs >= 8);
}

#[test]
fn two_studies_in_one_folder_and_the_older_resumed_keep_every_checkpoint() {
    use sha2::Digest;
    let (env, space) = setup();
    env.ok(&tune_args(&space, "a", "3"));
    env.ok(&tune_args(&space, "b", "3"));
    // The older study resumed in the same folder.
    env.ok(&tune_args(&space, "a", "5"));
    let conn = crate::common::read_only(&env.db);
    let rows: Vec<(String, String, String)> = conn
        .prepare("SELECT t.study_name, c.path, c.sha256 FROM checkpoints c JOIN trials t ON t.run_id = c.run_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(rows.len() >= 6, "{rows:?}");
    for (study, path, sha) in &rows {
        assert!(path.contains(&format!("/checkpoints/{study}/trial_")), "{path}");
        let bytes = std::fs::read(path).unwrap();
        let hex: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&hex, sha, "{path} does not hold what was recorded");
    }
    // The resumed older study's exports did not mix with the newer one's: b's folder was kept aside.
    let json = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(json(env.path("hyperparameter_tuning_results/trial_results.json"))["study"], "a");
    let kept: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hyperparameter_tuning_results."))
        .collect();
    let studies: Vec<serde_json::Value> =
        kept.iter().map(|n| json(env.path(n).join("trial_results.json"))["study"].clone()).collect();
    assert!(studies.contains(&serde_json::json!("b")), "{kept:?} {studies:?}");
    let err = env.fails(&["tune", "--dataset", "s", "--space", &space, "--study", "../x", "--trials", "2"]);
    assert!(err.contains("--study '../x'"), "{err}");
}

#[test]
fn flags_and_tickers_are_checked_before_anything_is_written() {
    let (env, space) = setup();
    let before = env.dump();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["tune", "--holdout", "0.95"], "'0.95' is not a share between 0 and 0.9"),
        (vec!["tune", "--trials", "0"], "'0' is not a whole number of at least 1"),
        (vec!["tune", "--epochs", "0"], "'0' is not a whole number of at least 1"),
        (vec!["pipeline", "--final-epochs", "0"], "'0' is not a whole number of at least 1"),
        (vec!["extend", "--top-n", "0"], "'0' is not a whole number of at least 1"),
        (vec!["backtest", "--commission-bps", "1e9"], "'1e9' is not a number of basis points"),
        // 300 days leave too few samples before a holdout of 0.85 for any window the space allows.
        (vec!["tune", "--dataset", "s", "--space", &space, "--holdout", "0.85", "--study", "h"], "--holdout 0.85"),
    ];
    for (args, expected) in cases {
        let err = env.fails(&args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let bad = env.write("bad.csv", "date,ticker,close\n2020-01-02,\"A,B\",1\n2020-01-03,\"A,B\",2\n");
    let err = env.fails(&["data", "import", bad.to_str().unwrap()]);
    assert!(err.contains("bad.csv") && err.contains("line 2") && err.contains("no commas"), "{err}");
    assert_eq!(before, env.dump());
    assert!(!env.path("hyperparameter_tuning_results").exists());
}

/// A planted signal ("tomorrow repeats today" with probability Phi(0.5) = 69%): the pooled linear
/// model finds it, within 2 points of the repeat-today rule scored on the same validation dates,
/// and the study records its baselines (each fitted on the training span only) and says how the
/// best compares with them and with chance.
#[test]
fn a_pooled_linear_model_finds_a_planted_signal_and_the_baselines_say_so() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "6", "--days", "1500", "--seed", "11", "--signal", "0.5", "--name", "s"]);
    let space = env.write(
        "space.toml",
        "[model_type]\ntype = \"categorical\"\nchoices = [\"linear\"]\n\n[layout]\ntype = \"categorical\"\n\
         choices = [\"pooled\"]\n\n[seq_len]\ntype = \"categorical\"\nchoices = [5]\n",
    );
    let out = env.ok(&[
        "tune",
        "--dataset",
        "s",
        "--space",
        space.to_str().unwrap(),
        "--study",
        "p",
        "--trials",
        "2",
        "--epochs",
        "20",
    ]);
    let baselines = env.ok(&["query", "SELECT name, accuracy FROM baselines ORDER BY name", "--format", "csv"]);
    let acc = |name: &str| -> f64 {
        let line =
            baselines.lines().find(|l| l.starts_with(&format!("{name},"))).unwrap_or_else(|| panic!("{baselines}"));
        line.split(',').nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(baselines.lines().count(), 5, "{baselines}");
    let rule = acc("repeat_today");
    assert!(rule > 0.64, "the rule should find the planted 69%: {baselines}");
    assert!(acc("always_up") < 0.57, "{baselines}");
    let best: f64 = env.sql_one("SELECT max(value) FROM trials WHERE study_name = 'p' AND state = 'COMPLETE'");
    assert!(best > rule - 0.02, "the pooled linear model scored {best}, the rule {rule}");
    // The same dates: the space's only window is the baselines' span.
    let same: i64 = env.sql_one(
        "SELECT count(*) FROM baseline_comparison WHERE study_name = 'p' AND dates = \
         (SELECT count(*) FROM outcomes o JOIN baselines b ON o.source = b.source AND b.name = 'repeat_today')",
    );
    assert_eq!(same, 4);
    assert!(out.contains("best baseline") && out.contains("configurations tried"), "{out}");
    assert!(out.contains("unlikely to be chance"), "{out}");
    // Per-date outcomes of every complete trial: one row per validation date, its mean hit the
    // trial's value.
    let (rows, mean_hit): (i64, f64) = {
        let c = crate::common::read_only(&env.path("experiments.db"));
        c.query_row(
            "SELECT count(*), avg(hit) FROM trial_outcomes WHERE study_name = 'p' AND number = \
             (SELECT arg_max(number, value) FROM trials WHERE study_name = 'p')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert!(rows > 100, "{rows}");
    assert!((mean_hit - best).abs() < 1e-6, "{mean_hit} vs {best}");
}

#[test]
fn a_warm_start_seeds_the_sampler_with_fitting_finished_trials_outside_the_budget() {
    let (env, space) = setup();
    env.ok(&tune_args(&space, "a", "8"));
    // The new space keeps hidden_size 8..16 only and has no learning_rate.
    let narrow = env.write(
        "narrow.toml",
        "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\", \"gru\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 8\nhigh = 16\nstep = 8\n\n\
         [seq_len]\ntype = \"int\"\nlow = 3\nhigh = 8\n",
    );
    let narrow = narrow.to_str().unwrap();
    let fitting: i64 = env.sql_one(
        "SELECT count(*) FROM trials t JOIN trial_params p USING (study_name, number)
         WHERE t.study_name = 'a' AND t.state = 'COMPLETE' AND p.name = 'hidden_size' AND p.value_json::INT <= 16",
    );
    let complete: i64 = env.sql_one("SELECT count(*) FROM trials WHERE study_name = 'a' AND state = 'COMPLETE'");
    assert!(fitting >= 2, "the test needs at least two fitting trials, got {fitting}");

    // `tune` of `study` in `space`, seeded from `from`.
    let warm = |space: &str, study: &str, trials: &str, from: &str| -> Vec<String> {
        [tune_args(space, study, trials), vec!["--warm-start", from]].concat().into_iter().map(String::from).collect()
    };
    let run = |args: Vec<String>, ok: bool| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if ok {
            env.ok(&args)
        } else {
            env.fails(&args)
        }
    };

    // Mistakes are refused before the study exists.
    let before = env.dump();
    let err = run(warm(narrow, "b", "4", "nope"), false);
    assert!(err.contains("no study named 'nope'") && err.contains("SELECT"), "{err}");
    let err = run(warm(narrow, "b", "4", "SELECT 1 AS x"), false);
    assert!(err.contains("study_name and number"), "{err}");
    let err = run(warm(narrow, "b", "4", "SELECT * FROM trials WHERE study_name = 'a' AND state = 'FAIL'"), false);
    assert!(err.contains("nothing to seed") && err.contains("was not created"), "{err}");
    let err = run(warm(&space, "a", "9", "a"), false);
    assert!(err.contains("study a exists"), "{err}");
    assert_eq!(env.dump(), before);

    // Warm from study a: the fitting finished trials seed it, the rest is counted and named.
    let out = run(warm(narrow, "b", "4", "a"), true);
    assert!(out.contains(&format!("{fitting} finished trials of a seed the sampler")), "{out}");
    assert!(out.contains("learning_rate") && out.contains("dropped"), "{out}");
    if fitting < complete {
        assert!(out.contains(&format!("{} skipped with a parameter outside this space", complete - fitting)), "{out}");
    }
    let seeds: i64 = env.sql_one("SELECT count(*) FROM study_seeds WHERE study_name = 'b' AND source_study = 'a'");
    assert_eq!(seeds, fitting);
    // Its budget is its own trials. The random phase still draws the same quasi-random point
    // as a cold study of the same seed; the Bayesian phase reads the seeds, so its first trial
    // is drawn by the model where a cold study, with one finished trial, still draws Halton.
    assert_eq!(env.sql_one::<i64>("SELECT count(*) FROM trials WHERE study_name = 'b'"), 4);
    env.ok(&tune_args(narrow, "cold", "4"));
    let sampled = |study: &str| -> String {
        env.sql_one(&format!(
            "SELECT string_agg(phase || ':' || sampler, ',' ORDER BY number) FROM trials WHERE study_name = '{study}' AND number < 2"
        ))
    };
    assert_eq!(sampled("cold"), "random:halton,bayesian:halton");
    assert!(
        sampled("b").starts_with("random:halton,bayesian:") && !sampled("b").ends_with("halton"),
        "{}",
        sampled("b")
    );
    let first_params = |study: &str| -> String {
        env.sql_one(&format!(
            "SELECT string_agg(name || '=' || value_json, ',' ORDER BY name) FROM trial_params WHERE study_name = '{study}' AND number = 0"
        ))
    };
    assert_eq!(first_params("b"), first_params("cold"));

    // A statement picks seeds too: the two best of study a.
    let best_two = "SELECT * FROM trials WHERE study_name = 'a' AND state = 'COMPLETE' ORDER BY value DESC LIMIT 2";
    let out = run(warm(&space, "c", "1", best_two), true);
    assert!(out.contains("2 finished trials of a seed"), "{out}");

    // The exports and the report name the seeds.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.path("hyperparameter_tuning_results/trial_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["study"], "c");
    assert_eq!(results["warm_start"].as_array().unwrap().len(), 2, "{results}");
    env.ok(&["report", "--study", "b", "--out", "r.html"]);
    let html = std::fs::read_to_string(env.path("r.html")).unwrap();
    assert!(html.contains(&format!("Warm-started: {fitting} finished trials")), "not in the report");
}
