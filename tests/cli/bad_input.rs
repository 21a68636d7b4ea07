//! Bad input, as a table: each case must fail with a non-zero exit and a message naming the file,
//! line, key or value and what to do, never panic, and leave the database's content (a checksum
//! over every table) exactly as it was.

use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::common::{dump, Env};

const QUICK: &str = r#"{"model_type": "mlp", "hidden_size": 16, "num_layers": 1, "dropout": 0.0, "learning_rate": 0.003,
    "weight_decay": 0.0, "batch_size": 64, "seq_len": 5, "epochs": 2, "patience": 5}"#;

/// A database with one dataset (`s`), two more for the backtest's cases, and a trained model in
/// `m/`; with tampered and truncated copies of its checkpoint.
fn setup() -> Env {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    env.ok(&["data", "synth", "--tickers", "3", "--days", "400", "--seed", "4", "--csv", "s.csv"]);
    // The model's tickers on days that never overlap; and two tickers the model does not know.
    let text = std::fs::read_to_string(env.path("s.csv")).unwrap();
    let mut disjoint = String::from("date,ticker,open,high,low,close,volume\n");
    let mut other = disjoint.clone();
    for line in text.lines().skip(1) {
        let (date, rest) = line.split_once(',').unwrap();
        let k: i64 = rest[1..2].parse().unwrap();
        let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + chrono::Duration::days(1000 * k);
        disjoint.push_str(&format!("{day},{rest}\n"));
        other.push_str(&format!("{date},X{rest}\n"));
    }
    env.write("disjoint.csv", &disjoint);
    env.write("other.csv", &other);
    env.ok(&["data", "import", env.path("disjoint.csv").to_str().unwrap()]);
    env.ok(&["data", "import", env.path("other.csv").to_str().unwrap()]);
    env.write("quick.json", QUICK);
    // Three models: one to use, one whose recorded file is tampered with, one truncated.
    for (out, seed) in [("m", "1"), ("tampered", "2"), ("truncated", "3")] {
        env.ok(&["train", "--config", "quick.json", "--dataset", "s", "--out", out, "--seed", seed]);
    }
    let file = env.path("tampered/best_model/model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let file = env.path("truncated/best_model/model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    env
}

/// A long CSV with `body` after the usual header.
fn csv(env: &Env, name: &str, body: &str) -> String {
    env.write(name, &format!("date,ticker,close\n{body}")).to_string_lossy().into_owned()
}

fn space(env: &Env, name: &str, text: &str) -> String {
    env.write(name, text).to_string_lossy().into_owned()
}

fn config(env: &Env, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut value: serde_json::Value = serde_json::from_str(QUICK).unwrap();
    edit(&mut value);
    env.write(name, &value.to_string()).to_string_lossy().into_owned()
}

/// Runs hptune and checks the outcome of a bad input: failure, no panic, the expected words.
/// Runs hptune on a bad input; returns what is wrong with the outcome (it must fail, without a
/// panic or a signal, with the expected words), if anything.
fn refused(cmd: &mut std::process::Command, label: &str, expect: &[&str]) -> Option<String> {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let problem = if out.status.success() {
        "succeeded".to_string()
    } else if out.status.code().is_none() {
        "was killed by a signal".to_string()
    } else if err.contains("panicked") {
        "panicked".to_string()
    } else if let Some(e) = expect.iter().find(|e| !err.contains(**e)) {
        format!("does not say '{e}'")
    } else {
        return None;
    };
    Some(format!("{label}: {problem}\n{err}"))
}

#[test]
fn fifty_bad_inputs_are_named_refused_and_change_nothing() {
    let env = setup();
    let before = env.dump();
    let big_days = {
        // Enough days that every window of 1000 days over 50 tickers exceeds the memory available.
        let info = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kb: u64 = info
            .lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        (2 * kb * 1024 / (1000 * 50 * 7 * 4) + 1100).to_string()
    };
    let garbage = env.path("garbage.csv");
    std::fs::write(&garbage, (0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>())
        .unwrap();
    std::fs::create_dir_all(env.path("empty_folder")).unwrap();
    let notdb = env.write("notdb.db", "this is not a database\n");
    let newer = env.path("newer.db");
    std::fs::copy(&env.db, &newer).unwrap();
    {
        let conn = duckdb::Connection::open(&newer).unwrap();
        conn.execute("INSERT INTO hptune_migrations VALUES (999, 'future', 'x', now()::TIMESTAMP, '9.0')", []).unwrap();
    }
    let newer_before = dump(&newer);

    let s = |v: &str| v.to_string();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        // CSV files
        (
            vec![s("data"), s("import"), csv(&env, "nan.csv", "2020-01-02,A,abc\n")],
            vec!["nan.csv", "line 2", "'abc' is not a number"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "neg.csv", "2020-01-02,A,-5\n")],
            vec!["neg.csv", "line 2", "positive finite price"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "nanv.csv", "2020-01-02,A,NaN\n")],
            vec!["nanv.csv", "line 2", "positive finite price"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "inf.csv", "2020-01-02,A,inf\n")],
            vec!["inf.csv", "line 2", "positive finite price"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "zero.csv", "2020-01-02,A,0\n")],
            vec!["zero.csv", "line 2", "positive finite price"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "dup.csv", "2020-01-02,A,1\n2020-01-03,A,2\n2020-01-02,A,3\n")],
            vec!["dup.csv", "line 4", "duplicate row for A on 2020-01-02", "line 2"],
        ),
        (
            vec![
                s("data"),
                s("import"),
                env.write("nocol.csv", "date,ticker,open\n2020-01-02,A,1\n").to_string_lossy().into_owned(),
            ],
            vec!["nocol.csv", "missing column(s) close"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "date.csv", "2020-13-45,A,1\n")],
            vec!["date.csv", "line 2", "'2020-13-45' is not a date", "YYYY-MM-DD"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "date2.csv", "yesterday,A,1\n")],
            vec!["date2.csv", "'yesterday' is not a date"],
        ),
        (
            vec![s("data"), s("import"), env.write("empty.csv", "").to_string_lossy().into_owned()],
            vec!["empty.csv", "empty"],
        ),
        (vec![s("data"), s("import"), csv(&env, "header.csv", "")], vec!["header.csv", "no data rows"]),
        (vec![s("data"), s("import"), garbage.to_string_lossy().into_owned()], vec!["garbage.csv", "not text"]),
        (
            vec![s("data"), s("import"), csv(&env, "comma.csv", "2020-01-02,\"A,B\",1\n")],
            vec!["comma.csv", "line 2", "no commas"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "quote.csv", "2020-01-02,\"A\"\"B\",1\n")],
            vec!["quote.csv", "line 2", "quotes"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "blank.csv", "2020-01-02,,1\n")],
            vec!["blank.csv", "line 2", "ticker"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "ctl.csv", "2020-01-02,A\u{7},1\n")],
            vec!["ctl.csv", "line 2", "control characters"],
        ),
        (
            vec![
                s("data"),
                s("import"),
                env.write("vol.csv", "date,ticker,close,volume\n2020-01-02,A,1,-3\n").to_string_lossy().into_owned(),
            ],
            vec!["vol.csv", "line 2", "volume must be"],
        ),
        (
            vec![
                s("data"),
                s("import"),
                env.write("twice.csv", "date,ticker,close,close\n2020-01-02,A,1,1\n").to_string_lossy().into_owned(),
            ],
            vec!["twice.csv", "'close' appears twice"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "ragged.csv", "2020-01-02,A,1,9\n")],
            vec!["ragged.csv", "line 2", "not valid CSV"],
        ),
        (
            vec![s("data"), s("import"), env.path("empty_folder").to_string_lossy().into_owned()],
            vec!["empty_folder", "no .csv file"],
        ),
        (vec![s("data"), s("import"), s("missing.csv")], vec!["missing.csv"]),
        (
            vec![
                s("data"),
                s("import"),
                env.path("s.csv").to_string_lossy().into_owned(),
                s("--name"),
                s("fresh"),
                s("--tickers"),
                s("S0,NOPE"),
            ],
            vec!["NOPE"],
        ),
        (
            vec![s("data"), s("import"), csv(&env, "taken.csv", "2020-01-02,A,1\n"), s("--name"), s("s")],
            vec!["'s' is taken", "--name"],
        ),
        // Model configurations
        (
            vec![
                s("train"),
                s("--config"),
                env.write("bad.json", "{\"model_type\": ").to_string_lossy().into_owned(),
                s("--dataset"),
                s("s"),
            ],
            vec!["bad.json"],
        ),
        (
            vec![
                s("train"),
                s("--config"),
                config(&env, "unknown.json", |c| c["hidden_sise"] = 8.into()),
                s("--dataset"),
                s("s"),
            ],
            vec!["unknown.json", "hidden_sise"],
        ),
        (
            vec![
                s("train"),
                s("--config"),
                config(&env, "typed.json", |c| c["hidden_size"] = "big".into()),
                s("--dataset"),
                s("s"),
            ],
            vec!["typed.json", "hidden_size"],
        ),
        (
            vec![
                s("train"),
                s("--config"),
                config(&env, "range.json", |c| c["dropout"] = 1.5.into()),
                s("--dataset"),
                s("s"),
            ],
            vec!["range.json", "dropout", "1.5"],
        ),
        (
            vec![
                s("train"),
                s("--config"),
                config(&env, "kind.json", |c| c["model_type"] = "transformer".into()),
                s("--dataset"),
                s("s"),
            ],
            vec!["kind.json", "model_type"],
        ),
        (vec![s("train"), s("--config"), s("nowhere.json"), s("--dataset"), s("s")], vec!["nowhere.json"]),
        // Search spaces
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "m.toml", "[hidden_size\ntype = \"int\""),
                s("--study"),
                s("x"),
            ],
            vec!["not valid TOML"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "lh.toml", "[dropout]\ntype = \"float\"\nlow = 0.5\nhigh = 0.1\n"),
                s("--study"),
                s("x"),
            ],
            vec!["'dropout'", "low < high"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "ec.toml", "[model_type]\ntype = \"categorical\"\nchoices = []\n"),
                s("--study"),
                s("x"),
            ],
            vec!["'model_type'", "choices is empty"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "ut.toml", "[dropout]\ntype = \"beta\"\n"),
                s("--study"),
                s("x"),
            ],
            vec!["'dropout'", "'beta'"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "lg.toml", "[learning_rate]\ntype = \"float\"\nlow = 0.0\nhigh = 0.1\nlog = true\n"),
                s("--study"),
                s("x"),
            ],
            vec!["'learning_rate'", "low > 0"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "uk.toml", "[dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\nlg = true\n"),
                s("--study"),
                s("x"),
            ],
            vec!["'dropout'", "lg"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "none.toml", "# nothing\n"),
                s("--study"),
                s("x"),
            ],
            vec!["no parameters"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "up.toml", "[colour]\ntype = \"categorical\"\nchoices = [\"red\"]\n"),
                s("--study"),
                s("x"),
            ],
            vec!["colour"],
        ),
        (
            vec![
                s("tune"),
                s("--dataset"),
                s("s"),
                s("--space"),
                space(&env, "huge.toml", "[hidden_size]\ntype = \"int\"\nlow = 16\nhigh = 100000000\n"),
                s("--study"),
                s("x"),
            ],
            vec!["hidden_size", "100000000", "[1, 4096]"],
        ),
        (
            vec![
                s("data"),
                s("synth"),
                s("--tickers"),
                s("100000000"),
                s("--days"),
                s("100000000"),
                s("--seed"),
                s("1"),
            ],
            vec!["--tickers 100000000 --days 100000000", "rows", "fewer tickers or days"],
        ),
        // Flags
        (vec![s("tune"), s("--holdout"), s("0.95")], vec!["--holdout", "0.95"]),
        (vec![s("tune"), s("--trials"), s("0")], vec!["--trials", "'0'"]),
        (vec![s("tune"), s("--jobs"), s("-1")], vec!["--jobs", "-1"]),
        (vec![s("train"), s("--device"), s("tpu")], vec!["--device", "tpu", "cpu, cuda"]),
        (vec![s("backtest"), s("--threshold"), s("1.5")], vec!["--threshold", "1.5"]),
        (vec![s("backtest"), s("--commission-bps"), s("-1")], vec!["--commission-bps", "-1"]),
        (vec![s("backtest"), s("--cash"), s("-5")], vec!["--cash", "-5"]),
        (vec![s("backtest"), s("--cash"), s("0")], vec!["--cash", "0"]),
        (vec![s("backtest"), s("--mode"), s("sideways")], vec!["--mode", "sideways"]),
        (vec![s("query"), s("SELECT 1"), s("--format"), s("xml")], vec!["--format", "xml"]),
        (vec![s("extend"), s("--scheme"), s("random")], vec!["--scheme", "random"]),
        (vec![s("pipeline"), s("--final-epochs"), s("0")], vec!["--final-epochs", "'0'"]),
        (vec![s("clean"), s("--keep-top"), s("-1")], vec!["--keep-top", "'-1'"]),
        (vec![s("report"), s("--since"), s("last week")], vec!["--since", "'last week'"]),
        (vec![s("report"), s("--study"), s("nope")], vec!["no study 'nope'"]),
        (vec![s("clean"), s("--older-than"), s("a week")], vec!["--older-than", "'a week'"]),
        // Stages out of order, unknown names
        (vec![s("extend")], vec!["no tuning study", "hptune tune"]),
        (vec![s("analyze")], vec!["no extended training run", "hptune extend"]),
        (vec![s("extend"), s("--study"), s("nope")], vec!["'nope'", "hptune tune --study nope"]),
        (vec![s("extend"), s("--resume"), s("extended-nope")], vec!["extended-nope"]),
        (vec![s("tune"), s("--dataset"), s("nope")], vec!["no dataset named 'nope'", "hptune data list"]),
        (vec![s("data"), s("show"), s("nope")], vec!["no dataset named 'nope'"]),
        (vec![s("export"), s("tune")], vec!["no study", "hptune tune"]),
        (vec![s("export"), s("train"), s("--run"), s("train-nope")], vec!["train-nope"]),
        (vec![s("query"), s("nope_view")], vec!["nope_view"]),
        // Checkpoints and data the model does not fit
        (vec![s("backtest"), s("--model-path"), s("tampered")], vec!["does not match its record", "content changed"]),
        (vec![s("backtest"), s("--model-path"), s("truncated")], vec!["does not match its record", "truncated"]),
        (vec![s("backtest"), s("--model-path"), s("m"), s("--dataset"), s("other")], vec!["S0"]),
        (
            vec![
                s("backtest"),
                s("--model-path"),
                s("m"),
                s("--dataset"),
                s("disjoint"),
                s("--include-training"),
                s("--start"),
                s("2000-01-01"),
            ],
            vec!["share no date", "disjoint"],
        ),
        (
            vec![s("backtest"), s("--model-path"), s("m"), s("--start"), s("2000-01-03")],
            vec!["overlaps the model's training data", "--include-training"],
        ),
        // Files and folders
        (
            vec![s("train"), s("--config"), s("quick.json"), s("--dataset"), s("s"), s("--out"), s("/proc/hptune-out")],
            vec!["/proc/hptune-out"],
        ),
        (vec![s("--db"), notdb.to_string_lossy().into_owned(), s("data"), s("list")], vec!["notdb.db"]),
        (
            vec![s("--db"), newer.to_string_lossy().into_owned(), s("data"), s("list")],
            vec!["newer.db", "newer hptune", "schema version 999"],
        ),
        (
            vec![
                s("--db"),
                s("/proc/hptune.db"),
                s("data"),
                s("synth"),
                s("--tickers"),
                s("2"),
                s("--days"),
                s("100"),
                s("--seed"),
                s("1"),
            ],
            vec!["/proc/hptune.db"],
        ),
        // Sizes the machine cannot hold
        (
            vec![
                s("data"),
                s("synth"),
                s("--tickers"),
                s("50"),
                s("--days"),
                big_days,
                s("--seed"),
                s("1"),
                s("--name"),
                s("big"),
            ],
            vec![],
        ),
    ];
    let mut n = 0;
    let mut problems = Vec::new();
    for (args, expect) in &cases {
        let label = args.join(" ");
        if expect.is_empty() {
            // Not a bad input by itself: the large panel the memory case below trains on.
            env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
            continue;
        }
        // Cases that name their own database run without the test's.
        let mut cmd = if args[0] == "--db" {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hptune"));
            c.current_dir(env.dir.path()).env_remove("HPTUNE_DB");
            c
        } else {
            env.cmd()
        };
        problems.extend(refused(cmd.args(args), &label, expect));
        n += 1;
    }
    let before_big = env.dump();
    let space_1000 = space(&env, "long.toml", "[seq_len]\ntype = \"int\"\nlow = 900\nhigh = 1000\n");
    problems.extend(refused(
        env.cmd().args(["tune", "--dataset", "big", "--space", &space_1000, "--study", "huge", "--holdout", "0.05"]),
        "a study whose windows need more memory than the machine has",
        &["would need about", "GB", "seq_len"],
    ));
    n += 1;
    assert_eq!(env.dump(), before_big, "the memory case changed the database");

    // A full disk, as a size limit on the files hptune writes (RLIMIT_FSIZE, with SIGXFSZ
    // ignored so that the write fails instead of killing the process).
    let mut cmd = env.cmd();
    cmd.args(["data", "synth", "--tickers", "20", "--days", "3000", "--seed", "3", "--csv", "full.csv"]);
    limit_file_size(&mut cmd, 64 * 1024);
    problems.extend(refused(&mut cmd, "a full disk", &["full.csv"]));
    n += 1;
    assert!(
        problems.is_empty(),
        "{} of {n} bad inputs were not handled well:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(!env.path("full.csv").exists(), "a partial full.csv was left");
    assert_eq!(dump(&newer), newer_before);
    assert!(n >= 50, "only {n} cases");
    // Every case left the database as it was (the large panel aside, which was added on purpose).
    let after = env.dump();
    let without_big = |d: &str| {
        d.lines().filter(|l| !l.starts_with("prices") && !l.starts_with("dataset")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(without_big(&after), without_big(&before));
    assert_eq!(after, before_big);
    assert!(Path::new(&env.db).exists());
}

fn limit_file_size(cmd: &mut std::process::Command, bytes: u64) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A study server that cannot be reached is named with the cause, said once, and nothing is
/// recorded.
#[test]
fn an_unreachable_study_server_is_named_with_its_cause_once() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "2", "--days", "200", "--seed", "1", "--name", "s"]);
    let before = env.dump();
    let url = "postgresql://postgres@127.0.0.1:1/x";
    let err = env.fails(&["tune", "--storage", url, "--study", "s", "--trials", "2"]);
    assert!(err.contains(&format!("{url}: error connecting to server: Connection refused")), "{err}");
    assert_eq!(err.matches("error connecting").count(), 1, "{err}");
    assert_eq!(env.dump(), before);
}

/// No output can overwrite the database: every output file or folder that is the database, its
/// log or another name for it (and every stage folder that holds it) is refused before anything
/// is opened, one case per command, and the file stays byte for byte.
#[test]
fn outputs_that_name_the_database_are_refused() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "2", "--days", "300", "--seed", "1", "--name", "s"]);
    std::os::unix::fs::symlink(&env.db, env.path("link.db")).unwrap();
    std::fs::hard_link(&env.db, env.path("hard.db")).unwrap();
    let bytes = std::fs::read(&env.db).unwrap();
    let db = env.db.to_str().unwrap();
    let wal = format!("{db}.wal");
    let same = ["destroy the record"];
    let holds = ["holds the database"];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["query", "SELECT 1", "--output", db], &same),
        (vec!["query", "SELECT 1", "--output", "experiments.db"], &same),
        (vec!["query", "SELECT 1", "--output", "link.db"], &same),
        (vec!["query", "SELECT 1", "--output", "hard.db"], &same),
        (vec!["query", "SELECT 1", "--output", &wal], &same),
        (vec!["query", "SELECT 1", "--format", "parquet", "--output", db], &same),
        (vec!["query", "best-config", "--format", "json", "-o", db], &same),
        (vec!["report", "--out", db], &same),
        (vec!["data", "synth", "--tickers", "2", "--days", "100", "--seed", "2", "--csv", db], &same),
        (vec!["tune", "--dataset", "s", "--out", db], &same),
        (vec!["tune", "--dataset", "s", "--out", "."], &holds),
        (vec!["extend", "--out", db], &same),
        (vec!["train", "--dataset", "s", "--out", db], &same),
        (vec!["backtest", "--out", db], &same),
        (vec!["backtest", "--out", "."], &holds),
        (vec!["pull", "--storage", "postgresql://u@127.0.0.1:1/x", "--out", db], &same),
        (vec!["analyze", "--out", db], &same),
        (vec!["export", "--to", db], &same),
        (vec!["pipeline", "--dataset", "s", "--out", db], &same),
    ];
    let mut problems = Vec::new();
    for (args, expect) in &cases {
        problems.extend(refused(env.cmd().args(args), &args.join(" "), expect));
        if std::fs::read(&env.db).unwrap() != bytes {
            problems.push(format!("{}: the database changed", args.join(" ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    env.ok(&["data", "list"]);
}

/// No password in messages or the database: a storage URL's password (userinfo or `password=`)
/// and a lock holder's command line with one are shown redacted, and the file never holds them.
#[test]
fn passwords_never_reach_messages_or_the_database() {
    let env = Env::new();
    env.ok(&["data", "synth", "--tickers", "2", "--days", "300", "--seed", "1", "--name", "s"]);
    let mut seen = String::new();
    for url in ["postgresql://u:SECRETONE@127.0.0.1:1/x", "postgresql://u@127.0.0.1:1/x?password=SECRETTWO"] {
        for args in [
            vec!["tune", "--dataset", "s", "--storage", url, "--trials", "1"],
            vec!["pull", "--storage", url],
            vec!["pipeline", "--dataset", "s", "--storage", url],
        ] {
            let out = env.cmd().args(&args).output().unwrap();
            assert!(!out.status.success(), "{args:?} reached a server on port 1");
            seen.push_str(&String::from_utf8_lossy(&out.stdout));
            seen.push_str(&String::from_utf8_lossy(&out.stderr));
        }
    }
    let out = env.cmd().args(["tune", "--storage", "mysql://u:SECRETTHREE@h/x"]).output().unwrap();
    seen.push_str(&String::from_utf8_lossy(&out.stderr));
    // A process that holds the file, with a password in its command line.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut holder = std::process::Command::new(python)
        .arg("-c")
        .arg("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)")
        .arg(&env.db)
        .arg("--storage=postgresql://u:SECRETFOUR@h/x")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let out = env.cmd().args(["--lock-timeout", "1", "query", "SELECT 1"]).output().unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("held by") && err.contains("***"), "{err}");
    seen.push_str(&err);
    for secret in ["SECRETONE", "SECRETTWO", "SECRETTHREE", "SECRETFOUR"] {
        assert!(!seen.contains(secret), "{secret} was shown:\n{seen}");
    }
    let bytes = std::fs::read(&env.db).unwrap();
    for secret in ["SECRETONE", "SECRETTWO", "SECRETTHREE", "SECRETFOUR"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the database file");
    }
}
