//! `hptune report`: one self-contained HTML page of the record, opened in a real browser
//! (headless Chromium through Playwright): no console errors, nothing fetched, every chart drawn
//! with a size, and the ids that link each section to the database.

use crate::common::Env;
use crate::interop::python;
use crate::pipeline::pipeline;

/// What Chromium met on the page (`tests/browser/check_page.py`), with a screenshot at `shot`.
fn open_in_browser(page: &std::path::Path, shot: &std::path::Path) -> serde_json::Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check_page.py");
    let out = std::process::Command::new(python()).arg(script).arg(page).arg(shot).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_clean(seen: &serde_json::Value) {
    for key in ["console", "errors", "requests", "overflow"] {
        assert_eq!(seen[key], serde_json::json!([]), "{key}: {seen}");
    }
    let sections: Vec<&str> = seen["sections"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(
        sections,
        [
            "Pipeline history",
            "What changed since the previous pipeline",
            "Tuning study",
            "Cross-validation and selection",
            "Final model",
            "Backtest"
        ]
    );
}

#[test]
fn the_report_renders_in_a_browser_with_every_chart_and_the_ids_of_each_run() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "21", "--signal", "0.3", "--name", "s"]);
    pipeline(&env, "s", &[]);
    let first_study: String = env.sql_one("SELECT study_name FROM studies");
    let first_backtest: String = env.sql_one("SELECT backtest_id FROM backtests");
    pipeline(&env, "s", &["--seed", "5"]);

    let out = env.ok(&["report", "--out", "r/report.html"]);
    assert!(out.contains("r/report.html"), "{out}");
    let html = std::fs::read_to_string(env.path("r/report.html")).unwrap();
    // Self-contained: no script, stylesheet link, or anything fetched.
    for outside in ["<script", "<link", "src=", "url(", "http://", "https://"] {
        let found = html.match_indices(outside).filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"));
        assert_eq!(found.count(), 0, "the page refers outside itself with {outside}");
    }
    // Each section carries the ids of the newest run of its stage.
    for sql in [
        "SELECT study_name FROM studies ORDER BY created_at DESC LIMIT 1",
        "SELECT extended_run_id FROM extended_runs ORDER BY started_at DESC LIMIT 1",
        "SELECT selection_id FROM selections ORDER BY selected_at DESC LIMIT 1",
        "SELECT run_id FROM training_runs WHERE stage = 'train' ORDER BY started_at DESC LIMIT 1",
        "SELECT backtest_id FROM backtests ORDER BY created_at DESC LIMIT 1",
    ] {
        let id: String = env.sql_one(sql);
        assert!(html.contains(&id), "{id} is not in the report");
    }
    let history: i64 = env.sql_one("SELECT count(*) FROM pipeline_history");
    assert_eq!(history, 2);
    assert!(html.contains(&first_backtest), "the history lists every backtest");

    let seen = open_in_browser(&env.path("r/report.html"), &env.path("r/report.png"));
    assert_clean(&seen);
    let charts = seen["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 8, "{seen}");
    for c in charts {
        let (w, h) = (c["width"].as_f64().unwrap(), c["height"].as_f64().unwrap());
        assert!(w >= 300.0 && h >= 200.0, "{c}");
        assert!(c["texts"].as_u64().unwrap() >= 8 && c["shapes"].as_u64().unwrap() >= 20, "{c}");
    }
    assert!(seen["tables"].as_u64().unwrap() >= 6, "{seen}");
    assert!(std::fs::metadata(env.path("r/report.png")).unwrap().len() > 50_000);

    // A chosen study shows its own chain; --since narrows the history.
    env.ok(&["report", "--study", &first_study, "--since", "2999-01-01", "--out", "old.html"]);
    let old = std::fs::read_to_string(env.path("old.html")).unwrap();
    assert!(old.contains(&first_study) && old.contains(&first_backtest), "the chosen study's chain is missing");
    assert!(old.contains("No selections since 2999-01-01"), "--since did not narrow the history");
}

#[test]
fn a_report_of_an_empty_database_says_what_to_run() {
    let env = Env::new();
    env.ok(&["data", "list"]);
    env.ok(&["report"]);
    let html = std::fs::read_to_string(env.path("hptune-report.html")).unwrap();
    for next in ["hptune pipeline", "hptune tune", "hptune extend", "hptune train", "hptune backtest"] {
        assert!(html.contains(next), "{next}");
    }
    let seen = open_in_browser(&env.path("hptune-report.html"), &env.path("empty.png"));
    assert_clean(&seen);
    assert_eq!(seen["charts"], serde_json::json!([]));
}
