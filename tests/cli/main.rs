//! Integration tests: the real hptune binary, real data, a real DuckDB file per test.

mod backtest;
mod bad_input;
mod clean;
mod common;
mod concurrency;
mod cv;
mod data;
mod diff;
mod engine;
mod extend;
mod features;
mod interop;
mod interrupt;
mod merge;
mod pipeline;
mod query;
mod report;
mod search;
mod server;
mod store;
mod train;
mod tune;

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    hptune::cli::Cli::command().debug_assert();
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_definition_and_touch_nothing() {
    let env = common::Env::new();
    let bash = env.ok(&["completions", "bash"]);
    assert!(bash.contains("_hptune()") && bash.contains("pipeline") && bash.contains("--lock-timeout"), "{bash}");
    assert!(env.ok(&["completions", "zsh"]).starts_with("#compdef hptune"));
    assert!(env.ok(&["completions", "fish"]).contains("complete -c hptune"));
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH hptune 1") && man.contains("pipeline"), "{man}");
    assert!(!env.db.exists(), "completions and man opened the database");
}

#[test]
fn quiet_silences_progress_verbose_says_where_time_went_and_log_lines_carry_a_utc_timestamp() {
    let env = common::Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "2", "--name", "s"]);
    let config = env.write(
        "c.json",
        r#"{"model_type": "mlp", "hidden_size": 8, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.01,
            "weight_decay": 0.0, "batch_size": 64, "seq_len": 3, "epochs": 2, "patience": 5}"#,
    );
    let run = |extra: &[&str]| {
        let out = env
            .cmd()
            .args(["train", "--config", config.to_str().unwrap(), "--dataset", "s"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let logged = run(&[]);
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("train mlp")).collect();
    assert_eq!(lines.len(), 2, "{logged}");
    for l in lines {
        let stamp = l.split(' ').next().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{l}");
    }
    let quiet = run(&["--quiet", "--out", "q"]);
    assert!(!quiet.contains("train mlp"), "{quiet}");
    // --verbose adds where the time went outside training.
    let verbose = run(&["--verbose", "--out", "v"]);
    assert!(verbose.contains("costs: store: calls") && verbose.contains("costs: training epochs"), "{verbose}");
}

#[test]
fn every_command_and_flag_of_help_is_in_the_guide() {
    use clap::CommandFactory;
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    fn walk(cmd: &clap::Command, path: &str, guide: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            match arg.get_long() {
                Some("help" | "version") | None => {}
                Some(long) if !guide.contains(&format!("--{long}")) => missing.push(format!("{path} --{long}")),
                Some(_) => {}
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{path} {}", sub.get_name());
            if !guide.contains(&format!("`{name}")) {
                missing.push(name.clone());
            }
            walk(sub, &name, guide, missing);
        }
    }
    let mut missing = Vec::new();
    walk(&hptune::cli::Cli::command(), "hptune", &guide, &mut missing);
    assert!(missing.is_empty(), "not in docs/guide.md: {missing:?}");
}
