//! `hptune pipeline`, `check` and `export`: five stages in one command, every file written again
//! from the database, and honest numbers on noise.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::Env;

const SPACE: &str = "[model_type]\ntype = \"categorical\"\nchoices = [\"mlp\"]\n\n[hidden_size]\ntype = \"int\"\nlow = 16\nhigh = 64\nstep = 16\n\n\
[learning_rate]\ntype = \"float\"\nlow = 1e-3\nhigh = 1e-2\nlog = true\n\n[seq_len]\ntype = \"int\"\nlow = 2\nhigh = 5\n";

pub(crate) fn pipeline(env: &Env, dataset: &str, extra: &[&str]) -> String {
    let space = env.write("space.toml", SPACE);
    let mut args = vec![
        "pipeline",
        "--dataset",
        dataset,
        "--space",
        space.to_str().unwrap(),
        "--trials",
        "4",
        "--epochs",
        "4",
        "--top-n",
        "2",
        "--folds",
        "2",
        "--extend-epochs",
        "4",
        "--final-epochs",
        "15",
        "--jobs",
        "1",
    ];
    args.extend(extra);
    env.ok(&args)
}

/// The stages' output folders.
const OUTPUTS: [&str; 5] = [
    "hyperparameter_tuning_results",
    "extended_training_results",
    "final_model",
    "backtesting_results",
    "analysis_plots",
];

/// Every file under the stages' outputs, with its bytes.
pub(crate) fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in OUTPUTS.into_iter().chain(["best_config.json"]) {
        let mut stack = vec![root.join(name)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_pipeline_runs_five_stages_and_export_writes_every_file_again() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "21", "--signal", "0.3", "--name", "s"]);
    let out = pipeline(&env, "s", &[]);
    for stage in ["tune", "extend", "analyze", "train", "backtest"] {
        assert!(out.contains(&format!("│ {stage}")), "{out}");
    }
    let check = env.ok(&["check", "--dataset", "s"]);
    assert!(!check.contains("missing") && !check.contains("FAILED"), "{check}");
    // The run is one row of the history view, followed to its backtest.
    let history = env.ok(&[
        "query",
        "SELECT dataset, final_run_id IS NOT NULL, backtest_return_pct IS NOT NULL FROM pipeline_history",
        "--format",
        "csv",
    ]);
    assert_eq!(history.lines().nth(1), Some("s,true,true"), "{history}");

    let before = files(env.dir.path());
    assert!(before.len() >= 15, "{:?}", before.keys());
    assert!(before.keys().any(|k| k.ends_with("model.safetensors")));
    for name in OUTPUTS {
        std::fs::remove_dir_all(env.path(name)).unwrap();
    }
    std::fs::remove_file(env.path("best_config.json")).unwrap();
    let log = env.ok(&["export"]);
    assert_eq!(log.lines().count(), 5, "{log}");
    let after = files(env.dir.path());
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>());
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{name} differs after export");
    }
    // The restored checkpoints load: the backtest runs on the restored final model.
    env.ok(&["backtest", "--model-path", "final_model"]);
}

#[test]
fn a_failed_check_or_stage_stops_with_the_next_step() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "2", "--name", "s"]);
    let before = env.dump();
    let err = env.fails(&["pipeline", "--dataset", "nope"]);
    assert!(err.contains("check failed") && err.contains("nope"), "{err}");
    assert_eq!(env.dump(), before);

    let space = env.write("space.toml", SPACE);
    let err = env.fails(&[
        "pipeline",
        "--dataset",
        "s",
        "--space",
        space.to_str().unwrap(),
        "--trials",
        "3",
        "--epochs",
        "2",
        "--folds",
        "60",
        "--jobs",
        "1",
    ]);
    assert!(err.contains("stage extend failed") && err.contains("next:"), "{err}");
    // What finished before the failure is kept.
    let complete: i64 = env.sql_one("SELECT count(*) FROM trials WHERE state = 'COMPLETE'");
    assert!(complete >= 1);
    assert!(env.path("hyperparameter_tuning_results/trial_results.json").exists());
}

fn stat(env: &Env, strategy: &str, name: &str) -> f64 {
    env.sql_one(&format!(
        "SELECT value FROM backtest_stats WHERE scope = 'portfolio' AND strategy = '{strategy}' AND name = '{name}'"
    ))
}

#[test]
fn on_a_random_walk_nothing_survives_and_a_planted_signal_beats_buy_and_hold() {
    // Random walk: out-of-sample direction accuracy in the chance band, no profit beyond noise.
    let walk = Env::new();
    walk.ok(&["data", "synth", "--tickers", "3", "--days", "3000", "--seed", "8", "--name", "walk"]);
    pipeline(&walk, "walk", &[]);
    let (accuracy, n): (f64, i64) = {
        let conn = crate::common::read_only(&walk.db);
        conn.query_row("SELECT accuracy, n_predictions FROM backtests", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    let band = (4.0 * 0.5 / (n as f64).sqrt()).max(0.04);
    assert!((accuracy - 0.5).abs() < band, "accuracy {accuracy} over {n} predictions, band {band}");
    // One standard deviation of the period's return, from the strategy's own volatility.
    let days: f64 = walk.sql_one("SELECT count(*) FROM backtest_equity");
    let noise = stat(&walk, "model", "Volatility (Ann.) [%]") * (days / 252.0).sqrt();
    let ret = stat(&walk, "model", "Return [%]");
    assert!(ret < 2.0 * noise, "return {ret}% on a random walk, noise {noise}%");
    // The selection says so: chance explains its best.
    let p_chance: f64 = walk.sql_one("SELECT p_chance FROM study_validity");
    assert!(p_chance >= 0.05, "a random walk's best looks significant: p = {p_chance}");

    // Planted signal (the next direction repeats today's with probability 0.69): the model
    // finds it out of sample and beats buy and hold after costs.
    let signal = Env::new();
    signal.ok(&[
        "data",
        "synth",
        "--tickers",
        "3",
        "--days",
        "3000",
        "--seed",
        "8",
        "--signal",
        "0.5",
        "--name",
        "sig",
    ]);
    pipeline(&signal, "sig", &[]);
    let accuracy: f64 = signal.sql_one("SELECT accuracy FROM backtests");
    assert!(accuracy > 0.6, "accuracy {accuracy}");
    let (ret, hold) = (stat(&signal, "model", "Return [%]"), stat(&signal, "buy_and_hold", "Return [%]"));
    assert!(ret > hold, "return {ret}% vs buy and hold {hold}%");
    // Significant, not overfit, and PBO as an independent numpy computation from the paper gets it.
    let (p_chance, pbo, study): (f64, f64, String) = {
        let conn = crate::common::read_only(&signal.db);
        conn.query_row("SELECT p_chance, pbo, study_name FROM study_validity", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
    };
    assert!(p_chance < 0.05, "p = {p_chance}");
    assert!(pbo < 0.5, "PBO {pbo}");
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pbo_check.py");
    let out = std::process::Command::new(python).arg(script).arg(&signal.db).arg(&study).arg("16").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let numpy: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(numpy, pbo, "numpy's PBO {numpy}, hptune's {pbo}");
    // Each trial's PSR and DSR in SQL (`trial_sharpe`) are the selection's for its best trial.
    let gap: f64 = signal.sql_one(
        "SELECT max(greatest(abs(t.psr - v.psr), abs(t.dsr - v.dsr))) FROM trial_sharpe t
         JOIN study_validity v ON v.study_name = t.study_name AND v.best_trial = t.number",
    );
    assert!(gap < 1e-6, "trial_sharpe and study_validity differ by {gap}");
}

#[test]
fn the_same_seed_gives_the_same_trials_folds_and_trades() {
    let run = || {
        let env = Env::new();
        env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "4", "--signal", "0.3", "--name", "s"]);
        pipeline(&env, "s", &["--seed", "7"]);
        let rows = [
            "SELECT number, phase, state, value, val_loss FROM trials ORDER BY number",
            "SELECT name, value_json FROM trial_params ORDER BY number, name",
            "SELECT config_rank, fold, val_loss, val_accuracy, epochs_run FROM cv_folds ORDER BY ALL",
            "SELECT trial_number, config_json FROM selections",
            "SELECT best_val_loss, epochs_run FROM training_runs WHERE stage = 'train'",
            "SELECT accuracy FROM backtests",
        ]
        .map(|sql| env.ok(&["query", sql, "--format", "csv"]))
        .join("\n");
        let trades = std::fs::read(env.path("backtesting_results/trades.csv")).unwrap();
        (rows, trades)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.0, b.0);
    assert!(a.1 == b.1, "trades differ");
    assert!(a.1.len() > 200, "no trades");
}

#[test]
fn every_chart_is_a_compressed_png_with_text_and_data() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "21", "--signal", "0.3", "--name", "s"]);
    pipeline(&env, "s", &[]);
    let charts = [
        "hyperparameter_tuning_results/optimization_history.png",
        "hyperparameter_tuning_results/param_slices.png",
        "analysis_plots/cv_fold_scores.png",
        "analysis_plots/tuning_vs_cv.png",
        "final_model/training_curves.png",
        "backtesting_results/equity_curve.png",
    ];
    for chart in charts {
        let bytes = std::fs::read(env.path(chart)).unwrap();
        assert!(bytes.len() < 200_000, "{chart}: {} bytes", bytes.len());
        let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert!(info.width >= 500 && info.height >= 400, "{chart}: {}x{}", info.width, info.height);
        let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let inked = rgb.iter().filter(|p| **p != [255, 255, 255]).count();
        let colours: std::collections::HashSet<_> = rgb.iter().collect();
        // Text is anti-aliased (many greys); data adds the series' colours.
        assert!(
            inked * 50 > rgb.len() && colours.len() > 20,
            "{chart}: {inked} inked pixels, {} colours",
            colours.len()
        );
        assert!(rgb.contains(&[31, 119, 180]) || rgb.contains(&[214, 39, 40]), "{chart}: no series colour");
    }
}
