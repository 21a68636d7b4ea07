//! `hptune train`: learning what is there, reproducibility, checkpoints, bad configurations.

use serde_json::json;

use crate::common::Env;

fn config(env: &Env, name: &str, value: serde_json::Value) -> String {
    env.write(name, &value.to_string()).to_string_lossy().into_owned()
}

fn quick(model_type: &str) -> serde_json::Value {
    json!({"model_type": model_type, "hidden_size": 32, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
           "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 30, "patience": 6})
}

fn best_accuracy(env: &Env) -> f64 {
    env.sql_one("SELECT best_val_accuracy FROM training_runs ORDER BY started_at DESC LIMIT 1")
}

#[test]
fn it_learns_a_planted_signal_and_finds_none_in_a_random_walk() {
    let env = Env::new();
    for (signal, name) in [("0.5", "signal"), ("0", "walk")] {
        env.ok(&[
            "data",
            "synth",
            "--tickers",
            "4",
            "--days",
            "3000",
            "--seed",
            "5",
            "--signal",
            signal,
            "--name",
            name,
        ]);
    }
    let mut c = quick("mlp");
    c["seq_len"] = json!(2);
    let cfg = config(&env, "mlp.json", c);
    env.ok(&["train", "--config", &cfg, "--dataset", "signal", "--out", "m_signal"]);
    let signal = best_accuracy(&env);
    env.ok(&["train", "--config", &cfg, "--dataset", "walk", "--out", "m_walk"]);
    let walk = best_accuracy(&env);
    // About 475 validation days x 4 tickers: the chance band is 0.5 +- 0.05 (over 4 standard errors).
    assert!(signal > 0.6, "planted signal (Phi(0.5) = 0.69 reachable): validation accuracy {signal}");
    assert!((walk - 0.5).abs() < 0.05, "random walk: validation accuracy {walk}");
}

#[test]
fn recurrent_models_train_and_record_every_epoch() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "4", "--days", "600", "--seed", "2", "--signal", "0.5", "--name", "s"]);
    for model in ["lstm", "gru"] {
        let mut c = quick(model);
        c["epochs"] = json!(3);
        c["num_layers"] = json!(2);
        c["dropout"] = json!(0.2);
        let cfg = config(&env, &format!("{model}.json"), c);
        let out = env.ok(&["train", "--config", &cfg, "--dataset", "s", "--out", model]);
        assert!(out.contains("3 epochs"), "{out}");
    }
    let rows: i64 = env.sql_one("SELECT count(*) FROM epoch_metrics");
    assert_eq!(rows, 6);
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM training_runs WHERE status = 'finished' AND model_type IN ('lstm', 'gru')");
    assert_eq!(finished, 2);
}

#[test]
fn the_same_seed_gives_the_same_weights_and_metrics() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "4", "--days", "500", "--seed", "1", "--signal", "0.3", "--name", "s"]);
    let mut c = quick("mlp");
    c["epochs"] = json!(4);
    c["dropout"] = json!(0.3);
    let cfg = config(&env, "c.json", c);
    for (seed, out) in [("7", "a"), ("7", "b"), ("8", "c")] {
        env.ok(&["train", "--config", &cfg, "--dataset", "s", "--seed", seed, "--out", out]);
    }
    let metrics = |out: &str| -> String {
        env.sql_one(&format!(
            "SELECT string_agg(concat_ws(',', train_loss, val_loss, val_accuracy), ';' ORDER BY epoch) FROM epoch_metrics
             WHERE run_id = (SELECT run_id FROM checkpoints WHERE path LIKE '%/{out}/best_model/%')"
        ))
    };
    let bytes = |out: &str| std::fs::read(env.path(out).join("final_model/model.safetensors")).unwrap();
    assert_eq!(metrics("a"), metrics("b"));
    assert_eq!(bytes("a"), bytes("b"));
    assert_ne!(metrics("a"), metrics("c"));
    assert_ne!(bytes("a"), bytes("c"));
}

#[test]
fn recurrent_runs_repeat_exactly_on_one_thread_and_on_two() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "2", "--signal", "0.3", "--name", "s"]);
    for model in ["lstm", "gru"] {
        let mut c = quick(model);
        c["epochs"] = json!(2);
        c["batch_size"] = json!(64);
        let cfg = config(&env, &format!("{model}.json"), c);
        for threads in ["1", "2"] {
            let run = |out: &str| {
                let done = env
                    .cmd()
                    .env("RAYON_NUM_THREADS", threads)
                    .args(["train", "--config", &cfg, "--dataset", "s", "--seed", "3", "--out", out])
                    .output()
                    .unwrap();
                assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
                std::fs::read(env.path(out).join("final_model/model.safetensors")).unwrap()
            };
            let (a, b) = (run(&format!("{model}{threads}a")), run(&format!("{model}{threads}b")));
            assert!(a == b, "{model} with {threads} thread(s): two runs of one seed gave other weights");
        }
    }
}

#[test]
fn checkpoints_reload_exactly_and_refuse_tampering() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "1", "--signal", "0.5", "--name", "s"]);
    let mut c = quick("gru");
    c["epochs"] = json!(3);
    let cfg = config(&env, "c.json", c);
    env.ok(&["train", "--config", &cfg, "--dataset", "s"]);
    let store = hptune::store::Store::new(&env.db, Some(std::time::Duration::from_secs(10)));
    let best = env.path("final_model/best_model");
    let (loss, acc) = hptune::stages::train::evaluate_checkpoint(&store, &best).unwrap();
    let recorded: (f64, f64) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row("SELECT best_val_loss, best_val_accuracy FROM training_runs", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    assert_eq!((loss, acc), recorded);

    // config.json carries the tickers in order and the spans; training_results.json the history.
    let cfg_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("final_model/config.json")).unwrap()).unwrap();
    assert_eq!(cfg_json["tickers"], json!(["S0", "S1", "S2"]));
    assert_eq!(cfg_json["config"]["model_type"], "gru");
    assert!(cfg_json["holdout_start"].as_str().unwrap() > cfg_json["validation"]["end"].as_str().unwrap());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("final_model/training_results.json")).unwrap()).unwrap();
    assert_eq!(results["history"].as_array().unwrap().len(), 3);

    let file = best.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = format!("{:#}", hptune::stages::train::evaluate_checkpoint(&store, &best).err().unwrap());
    assert!(err.contains("does not match its record") && err.contains("content changed"), "{err}");
    std::fs::write(&file, &bytes[..100]).unwrap();
    let err = format!("{:#}", hptune::stages::train::evaluate_checkpoint(&store, &best).err().unwrap());
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn training_never_sees_the_holdout() {
    // Two datasets equal up to the holdout and different after it train identically.
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--csv", "a.csv"]);
    let text = std::fs::read_to_string(env.path("a.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = 1 + 3 * 320; // header + the first 320 days; the holdout (20% of 400) starts at day 320
    let mut changed: Vec<String> = lines[..cut].iter().map(|s| s.to_string()).collect();
    for l in &lines[cut..] {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        for v in &mut f[2..6] {
            *v = format!("{}", v.parse::<f64>().unwrap() * 1.5);
        }
        changed.push(f.join(","));
    }
    env.write("b.csv", &(changed.join("\n") + "\n"));
    env.ok(&["data", "import", env.path("a.csv").to_str().unwrap()]);
    env.ok(&["data", "import", env.path("b.csv").to_str().unwrap()]);
    let mut c = quick("mlp");
    c["epochs"] = json!(3);
    let cfg = config(&env, "c.json", c);
    env.ok(&["train", "--config", &cfg, "--dataset", "a", "--out", "ma"]);
    env.ok(&["train", "--config", &cfg, "--dataset", "b", "--out", "mb"]);
    let runs: Vec<(String, String)> = {
        let conn = crate::common::read_only(&env.db);
        let mut stmt = conn
            .prepare(
                "SELECT string_agg(concat_ws(',', train_loss, val_loss, val_accuracy), ';' ORDER BY epoch),
                        any_value(r.holdout_start)::VARCHAR
                 FROM epoch_metrics JOIN training_runs r USING (run_id) GROUP BY run_id ORDER BY min(r.started_at)",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0], runs[1]);
    let a = std::fs::read(env.path("ma/best_model/model.safetensors")).unwrap();
    let b = std::fs::read(env.path("mb/best_model/model.safetensors")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_bad_configuration_names_the_key_and_writes_nothing() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "200", "--seed", "1", "--name", "tiny"]);
    let before = env.dump();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = quick("mlp");
        c[key] = value;
        c.to_string()
    };
    let mut no_lr = quick("mlp");
    no_lr.as_object_mut().unwrap().remove("learning_rate");
    let cases: Vec<(String, &str)> = vec![
        ("{\"model_type\": ".into(), "not valid JSON"),
        (with("learning_rate", json!(-0.1)), "key 'learning_rate' must be a number in (0, 1], got -0.1"),
        (with("hidden_size", json!("big")), "key 'hidden_size' must be an integer in [1, 4096], got \"big\""),
        (with("model_type", json!("transformer")), "key 'model_type' must be one of linear, mlp, lstm, gru"),
        (with("dropuot", json!(0.1)), "unknown key 'dropuot'"),
        (no_lr.to_string(), "missing key 'learning_rate'"),
        (with("seq_len", json!(300)), "seq_len 300 leaves"),
        ("[1, 2]".into(), "expected a JSON object"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = env.write(&format!("bad{i}.json"), text);
        let err = env.fails(&["train", "--config", file.to_str().unwrap(), "--dataset", "tiny"]);
        assert!(err.contains(expected), "case {i}: {err}");
        if i < 6 {
            assert!(err.contains(&format!("bad{i}.json")), "case {i} should name the file: {err}");
        }
        assert!(!env.path("final_model").exists());
    }
    assert_eq!(before, env.dump());
    let err = env.fails(&["train"]);
    assert!(err.contains("hptune analyze") && err.contains("--config"), "{err}");
    let err = env.fails(&["train", "--config", "missing.json"]);
    assert!(err.contains("missing.json"), "{err}");
}

/// The sha256 of each checkpoint file an export's `training_results.json` lists, against the file.
fn exported_checkpoints(dir: &std::path::Path) -> Vec<(String, String)> {
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("training_results.json")).unwrap()).unwrap();
    results["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let path = std::path::Path::new(c["path"].as_str().unwrap());
            assert!(
                path.starts_with(std::fs::canonicalize(dir).unwrap()),
                "{} is outside {}",
                path.display(),
                dir.display()
            );
            let file_sha = hptune::checkpoint::sha256_hex(&std::fs::read(path).unwrap());
            (c["sha256"].as_str().unwrap().to_string(), file_sha)
        })
        .collect()
}

#[test]
fn an_older_run_exports_complete_into_another_folder_and_an_existing_one_is_kept() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "3", "--signal", "0.4", "--name", "s"]);
    let mut c = quick("mlp");
    c["epochs"] = json!(2);
    let cfg = config(&env, "c.json", c);
    env.ok(&["train", "--config", &cfg, "--dataset", "s", "--seed", "1"]);
    env.ok(&["train", "--config", &cfg, "--dataset", "s", "--seed", "2"]);
    let runs = env.ok(&["query", "SELECT run_id FROM training_runs ORDER BY started_at", "--format", "csv"]);
    let runs: Vec<&str> = runs.lines().skip(1).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let before = env.dump();

    // The older run, into a folder of its own: every file, its checkpoints under it, each as recorded.
    env.ok(&["export", "train", "--run", runs[0], "--to", "old"]);
    let dir = env.path("old/final_model");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["run_id"], runs[0]);
    let checkpoints = exported_checkpoints(&dir);
    assert_eq!(checkpoints.len(), 2);
    for (recorded, file) in &checkpoints {
        assert_eq!(recorded, file);
    }
    assert_eq!(env.dump(), before, "an export into a new folder changes no record");

    // The newer run into the same folder: the older run's export is moved aside, not overwritten.
    let err = env.ok(&["export", "train", "--run", runs[1], "--to", "old"]);
    assert!(err.contains(runs[1]), "{err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["run_id"], runs[1]);
    let aside: Vec<_> = std::fs::read_dir(env.path("old"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("final_model."))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("old").join(&aside[0]).join("config.json")).unwrap())
            .unwrap();
    assert_eq!(kept["run_id"], runs[0]);
    // The backtest loads the weights of the run the folder now holds.
    env.ok(&["backtest", "--model-path", "old/final_model", "--out", "bt"]);
    let used: String = env.sql_one("SELECT run_id FROM backtests");
    assert_eq!(used, runs[1]);
    // Exporting the same run again rewrites it in place.
    env.ok(&["export", "train", "--run", runs[1], "--to", "old"]);
    assert_eq!(std::fs::read_dir(env.path("old")).unwrap().count(), 2);
    // An unknown run is named.
    let err = env.fails(&["export", "train", "--run", "train-nope", "--to", "old"]);
    assert!(err.contains("train-nope"), "{err}");
}
