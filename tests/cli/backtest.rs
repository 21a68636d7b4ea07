//! `hptune backtest`: which model, which tickers in which order, which days; signals; records and
//! exports.

use crate::common::Env;

const QUICK: &str = r#"{"model_type": "mlp", "hidden_size": 16, "num_layers": 1, "dropout": 0.0,
    "learning_rate": 0.003, "weight_decay": 0.0, "batch_size": 32, "seq_len": 5, "epochs": 5}"#;

fn csv_of(env: &Env, sql: &str) -> String {
    env.ok(&["query", sql, "--format", "csv"])
}

/// Three tickers of a four-ticker synthetic panel as dataset "three", the four as "all", the
/// three again in another order as "reordered", and two of them as "two"; a model trained on "three".
fn datasets() -> Env {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "4", "--days", "400", "--seed", "3", "--signal", "0.3", "--csv", "all.csv"]);
    let all = std::fs::read_to_string(env.path("all.csv")).unwrap();
    let keep = |drop: &[&str]| -> String {
        all.lines().filter(|l| !drop.iter().any(|d| l.contains(&format!(",{d},")))).map(|l| format!("{l}\n")).collect()
    };
    env.write("three.csv", &keep(&["S3"]));
    env.write("two.csv", &keep(&["S2", "S3"]));
    for (name, file, order) in [
        ("all", "all.csv", None),
        ("three", "three.csv", None),
        ("two", "two.csv", None),
        ("reordered", "three.csv", Some("S2,S0,S1")),
    ] {
        let path = env.path(file);
        let mut args = vec!["data", "import", path.to_str().unwrap(), "--name", name];
        if let Some(o) = order {
            args.extend(["--tickers", o]);
        }
        env.ok(&args);
    }
    let cfg = env.write("config.json", QUICK);
    env.ok(&["train", "--config", cfg.to_str().unwrap(), "--dataset", "three"]);
    env
}

#[test]
fn the_models_tickers_in_the_models_order_whatever_the_data() {
    let env = datasets();
    let trades = "SELECT ticker, side, entry_date, exit_date, entry_price, exit_price, pnl FROM backtest_trades
                  WHERE backtest_id = (SELECT max(backtest_id) FROM backtests) ORDER BY trade_no";
    env.ok(&["backtest"]);
    let on_three = csv_of(&env, trades);
    assert!(on_three.lines().count() > 2, "no trades: {on_three}");

    // The same tickers in another order give the same trades.
    env.ok(&["backtest", "--dataset", "reordered"]);
    assert_eq!(csv_of(&env, trades), on_three);
    // Extra tickers are ignored, with a note.
    let out = env.cmd().args(["backtest", "--dataset", "all"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ignoring 1 ticker") && err.contains("S3"), "{err}");
    assert_eq!(csv_of(&env, trades), on_three);
    let tickers: String = env.sql_one("SELECT tickers_json FROM backtests ORDER BY created_at DESC LIMIT 1");
    assert_eq!(tickers, r#"["S0","S1","S2"]"#);

    // A missing ticker is an error that lists it, and records nothing.
    let before = env.dump();
    let err = env.fails(&["backtest", "--dataset", "two"]);
    assert!(err.contains("lacks 1 of the model's tickers: S2"), "{err}");
    assert_eq!(env.dump(), before);
}

#[test]
fn the_period_starts_after_the_training_data_unless_asked() {
    let env = datasets();
    env.ok(&["backtest"]);
    let (start, holdout, in_sample): (String, String, bool) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row(
            "SELECT b.start_date::VARCHAR, r.holdout_start::VARCHAR, b.in_sample FROM backtests b JOIN training_runs r USING (run_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!(start, holdout);
    assert!(!in_sample);
    let first_equity: String = env.sql_one("SELECT min(date)::VARCHAR FROM backtest_equity");
    assert_eq!(first_equity, holdout);
    let early: i64 =
        env.sql_one("SELECT count(*) FROM backtest_trades WHERE entry_date <= (SELECT val_end FROM training_runs)");
    assert_eq!(early, 0);

    // An earlier start needs the flag, and is marked.
    let before = env.dump();
    let err = env.fails(&["backtest", "--start", "2000-06-01"]);
    assert!(err.contains("--include-training") && err.contains(&holdout), "{err}");
    assert_eq!(env.dump(), before);
    env.ok(&["backtest", "--start", "2000-06-01", "--include-training"]);
    let marked: bool = env.sql_one("SELECT in_sample FROM backtests ORDER BY created_at DESC LIMIT 1");
    assert!(marked);
    let stats = std::fs::read_to_string(env.path("backtesting_results/stats.json")).unwrap();
    assert!(stats.contains("\"in_sample\": true"), "{stats}");
}

#[test]
fn changing_later_prices_changes_no_earlier_decision() {
    let env = datasets();
    // The same panel with every price after a cut date in the holdout raised by 30%.
    let cut: String = env.sql_one("SELECT (holdout_start + INTERVAL 30 DAY)::DATE::VARCHAR FROM training_runs");
    let text = std::fs::read_to_string(env.path("three.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let mut out = format!("{header}\n");
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let later = f[0] > cut.as_str();
        let row: Vec<String> = f
            .iter()
            .zip(&cols)
            .map(|(v, c)| {
                if later && ["open", "high", "low", "close"].contains(c) {
                    format!("{}", v.parse::<f64>().unwrap() * 1.3)
                } else {
                    v.to_string()
                }
            })
            .collect();
        out += &(row.join(",") + "\n");
    }
    let path = env.write("later.csv", &out);
    env.ok(&["data", "import", path.to_str().unwrap(), "--name", "later"]);
    env.ok(&["backtest", "--dataset", "three"]);
    env.ok(&["backtest", "--dataset", "later"]);
    let ids: Vec<String> = csv_of(&env, "SELECT backtest_id FROM backtests ORDER BY created_at")
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let before_cut = |id: &str| {
        csv_of(
            &env,
            &format!(
                "SELECT ticker, side, entry_date, exit_date, entry_price, exit_price, size, pnl FROM backtest_trades
             WHERE backtest_id = '{id}' AND exit_date <= '{cut}' ORDER BY trade_no"
            ),
        ) + &csv_of(
            &env,
            &format!(
                "SELECT date, equity FROM backtest_equity WHERE backtest_id = '{id}' AND date <= '{cut}' ORDER BY date"
            ),
        )
    };
    assert_eq!(before_cut(&ids[0]), before_cut(&ids[1]));
    assert!(before_cut(&ids[0]).lines().count() > 20);
    // And something after the cut did change.
    let last = |id: &str| -> f64 {
        env.sql_one(&format!(
            "SELECT equity FROM backtest_equity WHERE backtest_id = '{id}' ORDER BY date DESC LIMIT 1"
        ))
    };
    assert_ne!(last(&ids[0]), last(&ids[1]));
}

#[test]
fn signals_are_the_latest_decision_per_ticker() {
    let env = datasets();
    let json = env.ok(&["backtest", "--generate-signals", "--format", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(list.len(), 3);
    let last: String = env
        .sql_one("SELECT max(date)::VARCHAR FROM prices p JOIN datasets d USING (dataset_id) WHERE d.name = 'three'");
    for (i, s) in list.iter().enumerate() {
        assert_eq!(s["ticker"], format!("S{i}"));
        assert_eq!(s["date"], last.as_str());
        let p = s["probability"].as_f64().unwrap();
        assert_eq!(s["position"].as_i64().unwrap(), i64::from(p > 0.5), "{s}");
    }
    let stored: i64 = env.sql_one("SELECT count(*) FROM signals WHERE mode = 'long-flat'");
    assert_eq!(stored, 3);
    let table = env.ok(&["backtest", "--generate-signals", "--mode", "long-short"]);
    assert!(table.contains("S2") && (table.contains("short") || table.contains("long")), "{table}");
}

#[test]
fn models_are_picked_in_the_seed_order_and_checked() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "360", "--seed", "5", "--signal", "0.3", "--name", "s"]);
    let source =
        |env: &Env| -> String { env.sql_one("SELECT model_source FROM backtests ORDER BY created_at DESC LIMIT 1") };
    let space = env.write(
        "space.toml",
        "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\"]\n\n[seq_len]\ntype = \"int\"\nlow = 3\nhigh = 6\n",
    );
    env.ok(&["tune", "--dataset", "s", "--space", space.to_str().unwrap(), "--trials", "3", "--epochs", "2"]);
    let out = env.cmd().arg("backtest").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("best trial"));
    assert_eq!(source(&env), "tuning");
    let best: String =
        env.sql_one("SELECT run_id FROM trials WHERE state = 'COMPLETE' ORDER BY value DESC, number LIMIT 1");
    let used: String = env.sql_one("SELECT run_id FROM backtests ORDER BY created_at DESC LIMIT 1");
    assert_eq!(used, best);

    env.ok(&["extend", "--top-n", "1", "--folds", "2", "--epochs", "2"]);
    env.ok(&["backtest"]);
    assert_eq!(source(&env), "extended");
    let used: String = env.sql_one("SELECT run_id FROM backtests ORDER BY created_at DESC LIMIT 1");
    assert!(used.ends_with("fold-2"), "{used}");

    env.ok(&["analyze"]);
    env.ok(&["train", "--epochs", "2"]);
    env.ok(&["backtest"]);
    assert_eq!(source(&env), "final");

    // --model-path: a copy of the export elsewhere is known by its content; a changed one is refused.
    let copy = env.path("copy");
    std::fs::create_dir_all(copy.join("best_model")).unwrap();
    let original = env.path("final_model/best_model/model.safetensors");
    std::fs::copy(&original, copy.join("best_model/model.safetensors")).unwrap();
    env.ok(&["backtest", "--model-path", copy.to_str().unwrap()]);
    assert_eq!(source(&env), "path");
    let mut bytes = std::fs::read(&original).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(copy.join("best_model/model.safetensors"), &bytes).unwrap();
    let err = env.fails(&["backtest", "--model-path", copy.to_str().unwrap()]);
    assert!(err.contains("not a checkpoint recorded"), "{err}");

    // With nothing in the database, the default configuration is trained first.
    let fresh = Env::new();
    fresh.ok(&["data", "synth", "--tickers", "2", "--days", "300", "--seed", "1", "--name", "s"]);
    let out = fresh.cmd().args(["backtest", "--dataset", "s"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("training the default configuration"));
    assert_eq!(source(&fresh), "default");
}

#[test]
fn a_final_model_from_another_database_is_checked_imported_and_backtested() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    let config = env.write(
        "c.json",
        r#"{"model_type": "mlp", "hidden_size": 16, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
            "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 3, "patience": 5}"#,
    );
    env.ok(&["train", "--config", config.to_str().unwrap(), "--dataset", "s", "--out", "fm"]);
    // A second database: the same prices under another name, and a dataset of other tickers.
    let other = env.path("other.db");
    let in_other = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hptune"));
        c.current_dir(env.dir.path()).env_remove("HPTUNE_DB").arg("--db").arg(&other).args(args);
        c.output().unwrap()
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let fails = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = fails(in_other(&["backtest", "--model-path", "fm"]));
    assert!(err.contains("trained on dataset s of another database") && err.contains("--dataset"), "{err}");
    ok(in_other(&[
        "data",
        "synth",
        "--tickers",
        "3",
        "--days",
        "400",
        "--seed",
        "4",
        "--signal",
        "0.3",
        "--name",
        "mine",
    ]));
    ok(in_other(&["data", "synth", "--tickers", "2", "--days", "400", "--seed", "5", "--name", "two"]));
    let err = fails(in_other(&["backtest", "--model-path", "fm", "--dataset", "two"]));
    assert!(err.contains("lacks") && err.contains("S2"), "{err}");
    let log = ok(in_other(&["backtest", "--model-path", "fm", "--out", "bt"]));
    assert!(log.contains("imported"), "{log}");
    let conn = crate::common::read_only(&other);
    let (stage, source, sha): (String, String, String) = conn
        .query_row(
            "SELECT r.stage, r.config_source, c.sha256 FROM training_runs r JOIN checkpoints c USING (run_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let n_backtests: i64 = conn.query_row("SELECT count(*) FROM backtests", [], |r| r.get(0)).unwrap();
    drop(conn);
    assert_eq!(stage, "import");
    assert!(source.contains("imported from fm") && source.contains("of another database"), "{source}");
    assert_eq!(
        sha,
        hptune::checkpoint::sha256_hex(&std::fs::read(env.path("fm/best_model/model.safetensors")).unwrap())
    );
    assert_eq!(n_backtests, 1);
    // Known now: a second backtest uses the recorded import, it does not import again.
    ok(in_other(&["backtest", "--model-path", "fm", "--out", "bt2"]));
    let imports: i64 = crate::common::read_only(&other)
        .query_row("SELECT count(*) FROM training_runs WHERE stage = 'import'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(imports, 1);
    // Changed weights are refused against the export's own hashes.
    std::fs::create_dir_all(env.path("copy/best_model")).unwrap();
    for f in ["config.json", "training_results.json"] {
        std::fs::copy(env.path("fm").join(f), env.path("copy").join(f)).unwrap();
    }
    let mut bytes = std::fs::read(env.path("fm/best_model/model.safetensors")).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(env.path("copy/best_model/model.safetensors"), bytes).unwrap();
    let before = crate::common::dump(&other);
    let err = fails(in_other(&["backtest", "--model-path", "copy"]));
    assert!(err.contains("does not match the sha256 its export lists"), "{err}");
    assert_eq!(crate::common::dump(&other), before);

    // An extended run's fold travels too: its hashes and spans come from extended_training_results.json.
    let space = env.write("space.toml", "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\"]\n");
    env.ok(&["tune", "--dataset", "s", "--space", space.to_str().unwrap(), "--trials", "2", "--epochs", "2"]);
    env.ok(&["extend", "--top-n", "1", "--folds", "2", "--epochs", "2"]);
    let id: String = env.sql_one("SELECT extended_run_id FROM extended_runs");
    let fold = format!("extended_training_results/extended_model_1/{id}/fold_2");
    let log = ok(in_other(&["backtest", "--model-path", &fold, "--out", "bt3"]));
    assert!(log.contains("imported"), "{log}");
    let source: String = crate::common::read_only(&other)
        .query_row("SELECT config_source FROM training_runs ORDER BY started_at DESC LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(source.contains(&format!("run {id}/config-1/fold-2 of another database")), "{source}");
}

/// A model of either layout, exported and backtested from another database, decides exactly as
/// the recorded one does: the same trades, from the same probabilities.
#[test]
fn checkpoints_of_each_layout_load_and_predict_identically_after_export() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    let other = env.path("other.db");
    let in_other = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hptune"))
            .current_dir(env.dir.path())
            .env_remove("HPTUNE_DB")
            .arg("--db")
            .arg(&other)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    in_other(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    for (model, layout) in [("mlp", "pooled"), ("gru", "joint"), ("linear", "pooled"), ("lstm", "pooled")] {
        let config = env.write(
            &format!("{model}-{layout}.json"),
            &format!(
                r#"{{"model_type": "{model}", "layout": "{layout}", "hidden_size": 8, "num_layers": 1, "dropout": 0.0,
                    "learning_rate": 0.003, "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 2}}"#
            ),
        );
        let fm = format!("fm-{model}-{layout}");
        env.ok(&["train", "--config", config.to_str().unwrap(), "--dataset", "s", "--out", &fm]);
        let exported: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(env.path(&fm).join("config.json")).unwrap()).unwrap();
        assert_eq!(exported["config"]["layout"], layout, "{exported}");
        let (here, there) = (format!("bt-{model}-{layout}-here"), format!("bt-{model}-{layout}-there"));
        env.ok(&["backtest", "--out", &here]);
        in_other(&["backtest", "--model-path", &fm, "--out", &there]);
        for file in ["trades.csv", "equity_curve.csv"] {
            let a = std::fs::read_to_string(env.path(&here).join(file)).unwrap();
            let b = std::fs::read_to_string(env.path(&there).join(file)).unwrap();
            assert_eq!(a, b, "{model} {layout}: {file} differs after export");
        }
        let stats = |dir: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(env.path(dir).join("stats.json")).unwrap()).unwrap()
        };
        assert_eq!(stats(&here)["predictions"], stats(&there)["predictions"]);
        assert!(stats(&here)["repeat_today_rule"]["Return [%]"].is_number(), "{}", stats(&here));
    }
}
