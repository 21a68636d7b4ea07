//! `hptune extend` and `hptune analyze`: cross-validated folds by date, records, exports, the
//! selection rule as SQL, and `train` / `query best-config` reading the selection.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::Env;

fn tuned() -> Env {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "420", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write(
        "space.toml",
        "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 8\nhigh = 32\n\n\
         [seq_len]\ntype = \"int\"\nlow = 3\nhigh = 10\n",
    );
    env.ok(&[
        "tune",
        "--dataset",
        "s",
        "--space",
        space.to_str().unwrap(),
        "--study",
        "st",
        "--trials",
        "5",
        "--epochs",
        "3",
    ]);
    env
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn extend_then_analyze_selects_by_the_rule_and_train_uses_the_selection() {
    let env = tuned();
    let out = env.ok(&["extend", "--top-n", "3", "--folds", "3", "--epochs", "4"]);
    assert!(out.contains("walk-forward") && out.contains("finished"), "{out}");
    let run: String = env.sql_one("SELECT extended_run_id FROM extended_runs");

    // The top 3 finished trials, in tuning order, each on 3 folds.
    let tops: String = env.sql_one(
        "SELECT string_agg(number::VARCHAR, ',' ORDER BY value DESC, number) FROM
         (SELECT * FROM trials WHERE study_name = 'st' AND state = 'COMPLETE' ORDER BY value DESC, number LIMIT 3)",
    );
    let chosen: String =
        env.sql_one("SELECT string_agg(trial_number::VARCHAR, ',' ORDER BY config_rank) FROM extended_configs");
    assert_eq!(tops, chosen);
    let finished: i64 =
        env.sql_one("SELECT count(*) FROM cv_folds WHERE status = 'finished' AND checkpoint_id IS NOT NULL");
    assert_eq!(finished, 9);

    // Walk-forward: training ends before validation with a day between (the label horizon),
    // windows expand, validation blocks follow each other, and no fold reaches the holdout.
    let leaks: i64 = env.sql_one(
        "SELECT count(*) FROM cv_folds f JOIN extended_runs e USING (extended_run_id)
         WHERE f.train_end >= f.val_start
            OR (SELECT count(DISTINCT date) FROM prices p WHERE p.dataset_id = e.dataset_id
                  AND p.date > f.train_end AND p.date < f.val_start) < e.label_horizon
            OR f.val_end >= e.holdout_start",
    );
    assert_eq!(leaks, 0);
    let bad_order: i64 = env.sql_one(
        "SELECT count(*) FROM (SELECT *, lag(val_end) OVER w AS prev_val_end, lag(train_end) OVER w AS prev_train_end,
                                  first_value(train_start) OVER w AS first_start FROM cv_folds
                               WINDOW w AS (PARTITION BY config_rank ORDER BY fold))
         WHERE val_start <= prev_val_end OR train_end <= prev_train_end OR train_start <> first_start",
    );
    assert_eq!(bad_order, 0);
    // Each fold is a training run with its own scaler and checkpoint, recorded by date span.
    let runs: i64 = env.sql_one(
        "SELECT count(*) FROM cv_folds f JOIN training_runs r USING (run_id) JOIN checkpoints c ON c.checkpoint_id = f.checkpoint_id
         WHERE r.stage = 'extend' AND r.status = 'finished' AND r.train_end = f.train_end AND r.val_start = f.val_start
           AND r.best_val_accuracy = f.val_accuracy AND r.epochs_run = f.epochs_run",
    );
    assert_eq!(runs, 9);

    // The export agrees with the rows and points at files that exist.
    let results = json(&env.path("extended_training_results/extended_training_results.json"));
    assert_eq!(results["extended_run_id"], run.as_str());
    assert_eq!(results["results"].as_array().unwrap().len(), 3);
    for r in results["results"].as_array().unwrap() {
        for f in r["folds"].as_array().unwrap() {
            let acc: f64 = env.sql_one(&format!(
                "SELECT val_accuracy FROM cv_folds WHERE config_rank = {} AND fold = {}",
                r["config_rank"], f["fold"]
            ));
            assert_eq!(f["val_accuracy"].as_f64().unwrap(), acc);
            assert!(std::path::Path::new(f["checkpoint"]["path"].as_str().unwrap()).exists());
        }
        let dir = env.path(&format!("extended_training_results/extended_model_{}", r["config_rank"]));
        assert_eq!(json(&dir.join("config.json"))["tickers"], serde_json::json!(["S0", "S1", "S2"]));
    }

    // analyze: the winner is the highest mean - std of the folds, computed here from the rows.
    let out = env.ok(&["analyze"]);
    assert!(out.contains("selected trial"), "{out}");
    let trial_accs: Vec<(i32, Vec<f64>)> = (0..3)
        .map(|rank| {
            let t: i32 =
                env.sql_one(&format!("SELECT trial_number FROM extended_configs WHERE config_rank = {}", rank + 1));
            let accs: String = env.sql_one(&format!(
                "SELECT string_agg(val_accuracy::VARCHAR, ',' ORDER BY fold) FROM cv_folds WHERE config_rank = {}",
                rank + 1
            ));
            (t, accs.split(',').map(|a| a.parse().unwrap()).collect())
        })
        .collect();
    let score = |a: &Vec<f64>| {
        let m = a.iter().sum::<f64>() / a.len() as f64;
        let s = (a.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (a.len() - 1) as f64).sqrt();
        (m - s, m)
    };
    let winner = trial_accs
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| {
            let (sa, ma) = score(&a.1);
            let (sb, mb) = score(&b.1);
            sa.partial_cmp(&sb).unwrap().then(ma.partial_cmp(&mb).unwrap()).then(j.cmp(i))
        })
        .unwrap()
        .1
         .0;
    let best = json(&env.path("best_config.json"));
    assert_eq!(best["source"]["trial_number"], winner);
    assert_eq!(best["source"]["extended_run_id"], run.as_str());
    assert_eq!(best["tickers"], serde_json::json!(["S0", "S1", "S2"]));
    assert!(best["selection"]["why"].as_str().unwrap().contains("cv mean - cv std"));
    let view_trial: i32 = env.sql_one("SELECT trial_number FROM best_config");
    assert_eq!(view_trial as i64, winner as i64);
    for png in ["cv_fold_scores.png", "tuning_vs_cv.png"] {
        assert_eq!(&std::fs::read(env.path("analysis_plots").join(png)).unwrap()[..4], b"\x89PNG");
    }

    // query best-config --format json prints exactly best_config.json.
    let printed = env.ok(&["query", "best-config", "--format", "json"]);
    assert_eq!(printed, std::fs::read_to_string(env.path("best_config.json")).unwrap());
    let table = env.ok(&["query", "best-config", "--format", "csv"]);
    assert!(table.contains(&format!("st,{winner},{run}")), "{table}");

    // train with no --config trains the selection, on its dataset, and says where it came from.
    env.ok(&["train", "--epochs", "2"]);
    let (source, config): (String, String) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row("SELECT config_source, config_json FROM training_runs WHERE stage = 'train'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    let selection: String = env.sql_one("SELECT selection_id FROM selections");
    assert_eq!(source, format!("selection {selection}"));
    let trained: serde_json::Value = serde_json::from_str(&config).unwrap();
    for key in ["model_type", "hidden_size", "seq_len", "learning_rate"] {
        assert_eq!(trained[key], best["config"][key], "{key}");
    }

    // Runs of different weeks compare in one view.
    let history = env.ok(&["query", "pipeline_history", "--format", "csv"]);
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(history.contains(",s,st,"), "{history}");
}

#[test]
fn purged_kfold_validates_every_block_and_purges_and_embargoes_around_it() {
    let env = tuned();
    env.ok(&["extend", "--top-n", "1", "--folds", "4", "--epochs", "2", "--scheme", "purged-kfold", "--embargo", "7"]);
    let csv = env.ok(&[
        "query",
        "SELECT fold, train_start, train_end, val_start, val_end, n_train, n_val, n_purged, n_embargoed FROM cv_folds ORDER BY fold",
        "--format",
        "csv",
    ]);
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    let n = |r: &Vec<&str>, i: usize| r[i].parse::<usize>().unwrap();
    for (i, r) in rows.iter().enumerate() {
        let (first, last) = (i == 0, i == 3);
        // One day purged on each side of the block that has a neighbour; the embargo after it.
        assert_eq!(n(r, 7), usize::from(!first) + usize::from(!last), "{csv}");
        assert_eq!(n(r, 8), if last { 0 } else { 7 }, "{csv}");
        // Middle folds train on both sides of their block.
        if !first && !last {
            assert!(r[1] < r[3] && r[2] > r[4], "{csv}");
        }
        if i > 0 {
            assert!(rows[i - 1][4] < r[3], "blocks overlap: {csv}");
        }
    }
    let total: usize = rows.iter().map(|r| n(r, 6)).sum();
    let all = n(&rows[0], 5) + n(&rows[0], 6) + n(&rows[0], 7) + n(&rows[0], 8);
    assert_eq!(total, all, "the blocks cover every sample date once: {csv}");
}

#[test]
fn cpcv_tests_every_group_in_as_many_splits_and_selects_on_paths_that_cover_every_date_once() {
    let env = tuned();
    let before = env.dump();
    let err = env.fails(&["extend", "--scheme", "walk-forward", "--test-groups", "2"]);
    assert!(err.contains("--test-groups") && err.contains("cpcv"), "{err}");
    let err = env.fails(&["extend", "--scheme", "cpcv", "--folds", "4", "--test-groups", "4"]);
    assert!(err.contains("--test-groups") && err.contains("4 groups"), "{err}");
    assert_eq!(env.dump(), before);

    let out = env.ok(&[
        "extend",
        "--top-n",
        "2",
        "--folds",
        "4",
        "--scheme",
        "cpcv",
        "--test-groups",
        "2",
        "--epochs",
        "2",
        "--embargo",
        "3",
    ]);
    assert!(out.contains("6 cpcv splits (4 groups, 2 tested; 3 paths)") && out.contains("path_mean"), "{out}");
    // C(4, 2) = 6 splits per configuration, each testing 2 groups; each group in C(3, 1) = 3.
    let per_group: String = env.sql_one(
        "SELECT string_agg(g || ':' || n, ',' ORDER BY g) FROM
         (SELECT unnest(test_groups) AS g, count(*) AS n FROM cv_folds WHERE config_rank = 1 GROUP BY g)",
    );
    assert_eq!(per_group, "1:3,2:3,3:3,4:3");
    // Every split accounts for every sample date once: trained, validated, purged or embargoed.
    let sizes: i64 = env.sql_one("SELECT count(DISTINCT n_train + n_val + n_purged + n_embargoed) FROM cv_folds");
    assert_eq!(sizes, 1);
    // Each of the 3 paths rebuilds every validated date exactly once from the splits' outcomes,
    // each group from a split that tests it.
    let dates: i64 = env.sql_one(
        "SELECT count(DISTINCT o.date) FROM outcomes o JOIN cv_folds f ON o.source = f.run_id WHERE f.config_rank = 1",
    );
    let paths: String = env.sql_one(
        "SELECT string_agg(DISTINCT n || '/' || u, ',') FROM
         (SELECT f.config_rank, p.path, count(o.date) AS n, count(DISTINCT o.date) AS u
          FROM cpcv_paths p JOIN cv_folds f ON f.extended_run_id = p.extended_run_id AND f.fold = p.fold
                                           AND list_contains(f.test_groups, p.test_group)
          JOIN outcomes o ON o.source = f.run_id AND o.date BETWEEN p.group_start AND p.group_end
          GROUP BY ALL)",
    );
    assert_eq!(paths, format!("{dates}/{dates}"));
    let view: String = env.sql_one("SELECT string_agg(DISTINCT dates || ' ' || complete, ',') FROM cpcv_path_results");
    assert_eq!(view, format!("{dates} true"));
    let n_paths: i64 = env.sql_one("SELECT count(*) FROM cpcv_path_results");
    assert_eq!(n_paths, 6);

    // The selection: the highest path mean - path std, recomputed here from the outcomes.
    env.ok(&["analyze"]);
    let expected: i64 = env.sql_one(
        "WITH per_path AS (
             SELECT f.config_rank, p.path, avg(o.hit) AS acc
             FROM cpcv_paths p JOIN cv_folds f ON f.extended_run_id = p.extended_run_id AND f.fold = p.fold
             JOIN outcomes o ON o.source = f.run_id AND o.date BETWEEN p.group_start AND p.group_end
             GROUP BY ALL)
         SELECT arg_max(config_rank, m) FROM (SELECT config_rank, avg(acc) - stddev_samp(acc) AS m FROM per_path GROUP BY 1)",
    );
    let chosen: i64 = env.sql_one("SELECT config_rank FROM selections");
    assert_eq!(chosen, expected);
    let best = json(&env.path("best_config.json"));
    assert_eq!(best["metrics"]["cpcv_paths"], 3, "{best}");
    assert!(best["selection"]["why"].as_str().unwrap().contains("over 3 cpcv paths (6 splits)"), "{best}");
    let results = json(&env.path("extended_training_results/extended_training_results.json"));
    assert_eq!(results["test_groups"], 2);
    assert_eq!(results["results"][0]["paths"].as_array().unwrap().len(), 3, "{results}");
    assert_eq!(results["results"][0]["folds"][0]["test_groups"], serde_json::json!([1, 2]));
    // A list column reads in CSV as DuckDB's CLI writes it.
    let csv =
        env.ok(&["query", "SELECT test_groups FROM cv_folds ORDER BY config_rank, fold LIMIT 1", "--format", "csv"]);
    assert_eq!(csv, "test_groups\n\"[1, 2]\"\n");
}

#[test]
fn order_mistakes_are_explained_and_change_nothing() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    let before = env.dump();
    let db = env.db.display().to_string();
    let err = env.fails(&["extend"]);
    assert!(err.contains("hptune tune") && err.contains(&db), "{err}");
    let err = env.fails(&["analyze"]);
    assert!(err.contains("hptune extend") && err.contains(&db), "{err}");
    let err = env.fails(&["train"]);
    assert!(err.contains("hptune analyze") && err.contains(&db), "{err}");
    let err = env.fails(&["query", "best-config", "--format", "json"]);
    assert!(err.contains("hptune analyze"), "{err}");
    let err = env.fails(&["extend", "--study", "nope"]);
    assert!(err.contains("nope") && err.contains("hptune tune"), "{err}");
    assert_eq!(env.dump(), before);
}

#[test]
fn too_many_folds_are_refused_before_anything_is_recorded() {
    let env = tuned();
    let before = env.dump();
    let err = env.fails(&["extend", "--folds", "40"]);
    assert!(err.contains("--folds") && err.contains("fold 1"), "{err}");
    assert_eq!(env.dump(), before);
    assert!(!env.path("extended_training_results").exists());
}

#[test]
fn a_killed_extend_resumes_keeping_finished_folds() {
    // GRU folds of several seconds each, so that the kill lands before the last one finishes.
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "6", "--days", "1000", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    let space = env.write(
        "space.toml",
        "[model_type]\ntype = \"categorical\"\nchoices = [\"gru\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 32\nhigh = 48\n",
    );
    env.ok(&["tune", "--dataset", "s", "--space", space.to_str().unwrap(), "--trials", "3", "--epochs", "1"]);
    let args = ["extend", "--top-n", "2", "--folds", "3", "--epochs", "30"];
    let mut child = env.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let count = |sql: &str| -> usize {
        let out = env.ok(&["query", sql, "--format", "csv"]);
        out.lines().nth(1).unwrap_or("0").parse().unwrap_or(0)
    };
    let start = Instant::now();
    while count("SELECT count(*) FROM cv_folds WHERE status = 'finished'") < 1
        && start.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished =
        "SELECT config_rank, fold, run_id, val_accuracy FROM cv_folds WHERE status = 'finished' ORDER BY ALL";
    let before = env.ok(&["query", finished, "--format", "csv"]);
    assert!(before.lines().count() >= 2, "no fold finished before the kill");
    let id: String = env.sql_one("SELECT extended_run_id FROM extended_runs");
    let err = env.fails(&["analyze"]);
    assert!(err.contains(&format!("hptune extend --resume {id}")), "{err}");

    env.ok(&["extend", "--resume", &id]);
    let after = env.ok(&["query", finished, "--format", "csv"]);
    assert_eq!(after.lines().count(), 7, "{after}");
    for line in before.lines().skip(1) {
        assert!(after.contains(line), "finished fold {line} changed:\n{after}");
    }
    let status: String = env.sql_one("SELECT status FROM extended_runs");
    assert_eq!(status, "finished");
    env.ok(&["analyze"]);
}

#[test]
fn two_extended_runs_in_one_folder_keep_their_checkpoints_and_backtests_load_the_right_weights() {
    use sha2::Digest;
    let env = tuned();
    env.ok(&["extend", "--top-n", "1", "--folds", "2", "--epochs", "2"]);
    env.ok(&["extend", "--top-n", "1", "--folds", "2", "--epochs", "3", "--seed", "7"]);
    let ids = env.ok(&["query", "SELECT extended_run_id FROM extended_runs ORDER BY started_at", "--format", "csv"]);
    let ids: Vec<&str> = ids.lines().skip(1).collect();
    assert_eq!(ids.len(), 2);
    // Every fold checkpoint of both runs still holds what was recorded, under its own run's folder.
    let conn = crate::common::read_only(&env.db);
    let rows: Vec<(String, String, String, String)> = conn
        .prepare(
            "SELECT f.extended_run_id, c.path, c.sha256, c.run_id FROM cv_folds f JOIN checkpoints c USING (checkpoint_id)",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    assert_eq!(rows.len(), 4);
    for (id, path, sha, _) in &rows {
        assert!(path.contains(&format!("/{id}/fold_")), "{path}");
        let hex: String =
            sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&hex, sha, "{path}");
    }
    // The older run's export goes back into the folder; the newer one's is kept aside.
    env.ok(&["export", "extend", "--run", ids[0]]);
    assert_eq!(json(&env.path("extended_training_results/extended_training_results.json"))["extended_run_id"], ids[0]);
    // A backtest of the older run's last fold, from the export, loads that fold's weights.
    let folder = format!("extended_training_results/extended_model_1/{}/fold_2", ids[0]);
    env.ok(&["backtest", "--model-path", &folder, "--include-training", "--start", "2001-06-01"]);
    let used: String = env.sql_one("SELECT run_id FROM backtests");
    let fold_run = &rows.iter().find(|r| r.0 == ids[0] && r.1.ends_with("fold_2/model.safetensors")).unwrap().3;
    assert_eq!(&used, fold_run);
}

#[test]
fn train_on_best_config_json_keeps_its_dataset_tickers_selection_and_study_seed() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "420", "--seed", "9", "--signal", "0.4", "--name", "s"]);
    env.ok(&["data", "synth", "--tickers", "2", "--days", "420", "--seed", "9", "--name", "two"]);
    let space = env.write("space.toml", "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\"]\n");
    let space = space.to_str().unwrap();
    env.ok(&[
        "tune",
        "--dataset",
        "s",
        "--space",
        space,
        "--trials",
        "3",
        "--epochs",
        "2",
        "--seed",
        "7",
        "--holdout",
        "0.3",
    ]);
    env.ok(&["extend", "--top-n", "1", "--folds", "2", "--epochs", "2"]);
    let out = env.ok(&["analyze"]);
    assert!(out.contains("next: hptune train"), "{out}");
    let selection: String = env.sql_one("SELECT selection_id FROM selections");
    // The file's selection, dataset and the study's seed and holdout come with it.
    let out = env.ok(&["train", "--config", "best_config.json", "--epochs", "2", "--out", "fm"]);
    assert!(out.contains("next: hptune backtest"), "{out}");
    let (linked, seed, dataset): (String, i64, String) = {
        let conn = crate::common::read_only(&env.db);
        conn.query_row(
            "SELECT r.selection_id, r.seed, d.name FROM training_runs r JOIN datasets d USING (dataset_id) WHERE r.stage = 'train'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    assert_eq!((linked.as_str(), seed, dataset.as_str()), (selection.as_str(), 7, "s"));
    let holdout: String = env.sql_one("SELECT holdout_start::VARCHAR FROM training_runs WHERE stage = 'train'");
    let study_holdout: String =
        env.sql_one("SELECT holdout_start::VARCHAR FROM training_runs WHERE stage = 'tune' LIMIT 1");
    assert_eq!(holdout, study_holdout);
    env.ok(&["backtest", "--model-path", "fm", "--out", "bt"]);
    let history = env.ok(&[
        "query",
        "SELECT final_run_id IS NOT NULL, backtest_id IS NOT NULL FROM pipeline_history",
        "--format",
        "csv",
    ]);
    assert_eq!(history.lines().nth(1), Some("true,true"), "{history}");
    // Other tickers are refused by name; a database without the file's dataset names it.
    let err = env.fails(&["train", "--config", "best_config.json", "--dataset", "two"]);
    assert!(err.contains("selected for tickers S0, S1, S2") && err.contains("two"), "{err}");
    let other = env.path("other.db");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hptune"));
    let out = cmd
        .current_dir(env.dir.path())
        .args(["--db", other.to_str().unwrap(), "train", "--config", "best_config.json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("selected on dataset s (content hash")
            && err.contains("hptune data import"),
        "{err}"
    );
}
