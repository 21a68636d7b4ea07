//! `hptune merge`: two machines' databases become one, both ways, with nothing lost or doubled.

use crate::common::Env;
use crate::pipeline::pipeline;

/// A view's rows, sorted, as text; numbers parsed so that two sums of the same values taken in
/// another order (their last bits) compare equal.
fn view_rows(env: &Env, view: &str) -> Vec<Vec<String>> {
    // When each file imported a dataset both hold, and applied its migrations, is that file's own.
    let except = match view {
        "datasets_overview" => " EXCLUDE (imported_at)",
        "schema_history" => " EXCLUDE (applied_at, hptune_version)",
        _ => "",
    };
    let csv = env.ok(&["query", &format!("SELECT *{except} FROM {view} ORDER BY ALL"), "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|f| match f.parse::<f64>() {
                    Ok(x) if f.contains('.') => format!("{:.9e}", x),
                    _ => f.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn two_machines_merge_both_ways_into_the_same_record_and_a_second_merge_adds_nothing() {
    // Two machines: the same dataset (imported on each), a pipeline each; B also a study of its own.
    let a = Env::new();
    let b = Env::new();
    for env in [&a, &b] {
        env.ok(&["data", "synth", "--tickers", "3", "--days", "500", "--seed", "4", "--signal", "0.3", "--name", "s"]);
    }
    pipeline(&a, "s", &["--seed", "1"]);
    pipeline(&b, "s", &["--seed", "2"]);
    b.ok(&["data", "synth", "--tickers", "4", "--days", "400", "--seed", "9", "--name", "t"]);
    b.ok(&["tune", "--dataset", "t", "--study", "only-b", "--trials", "2", "--epochs", "1"]);
    b.ok(&["note", "only-b", "tuned on machine b"]);
    // Each merged into a copy of the other.
    let (ab, ba) = (Env::new(), Env::new());
    std::fs::copy(&a.db, &ab.db).unwrap();
    std::fs::copy(&b.db, &ba.db).unwrap();
    let (a_db, b_db) = (a.db.to_str().unwrap(), b.db.to_str().unwrap());

    // --dry-run lists and writes nothing.
    let before = ab.dump();
    let dry = ab.ok(&["merge", b_db, "--dry-run"]);
    assert!(dry.contains("would copy") && dry.contains("studies: 2") && dry.contains("prices: 1600"), "{dry}");
    assert_eq!(ab.dump(), before);

    let out = ab.ok(&["merge", b_db]);
    assert!(out.contains("copied") && out.contains("of its datasets are here already"), "{out}");
    ba.ok(&["merge", a_db]);

    // Every view answers the same on both results.
    for view in hptune::store::VIEWS {
        assert_eq!(view_rows(&ab, view.name), view_rows(&ba, view.name), "view {} differs", view.name);
    }
    // Both machines' pipelines, B's own study with its note, and the shared dataset once.
    let one = |sql: &str| -> i64 { ab.sql_one(sql) };
    assert_eq!(one("SELECT count(*) FROM pipeline_history"), 2);
    assert_eq!(one("SELECT count(*) FROM datasets WHERE name = 's'"), 1);
    assert_eq!(one("SELECT count(*) FROM run_annotations WHERE id = 'only-b'"), 1);
    assert_eq!(one("SELECT count(*) FROM prices p JOIN datasets d USING (dataset_id) WHERE d.name = 't'"), 1600);
    // Every checkpoint's bytes came along and hash to what was recorded; B's final model exports
    // from A's file.
    assert_eq!(
        one("SELECT count(*) FROM checkpoints c LEFT JOIN checkpoint_files f USING (sha256) WHERE f.bytes IS NULL OR sha256(f.bytes) <> c.sha256"),
        0
    );
    let b_final: String = b.sql_one("SELECT run_id FROM training_runs WHERE stage = 'train'");
    ab.ok(&["export", "train", "--run", &b_final, "--to", "b-final"]);
    let weights = std::fs::read(ab.path("b-final/final_model/best_model/model.safetensors")).unwrap();
    let recorded: String =
        b.sql_one(&format!("SELECT sha256 FROM checkpoints WHERE run_id = '{b_final}' AND role = 'best'"));
    assert_eq!(hptune_sha256(&weights), recorded);

    // A second merge adds nothing.
    let again = ab.ok(&["merge", b_db]);
    assert!(again.contains("nothing new"), "{again}");
    let before = ab.dump();
    ab.ok(&["merge", ba.db.to_str().unwrap()]);
    assert_eq!(ab.dump(), before, "merging the other direction's result added rows");
}

fn hptune_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_conflict_or_a_newer_schema_is_refused_naming_it_with_nothing_written() {
    let a = Env::new();
    a.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "4", "--name", "s"]);
    a.ok(&["tune", "--dataset", "s", "--study", "st", "--trials", "2", "--epochs", "1"]);
    let before = a.dump();

    // The same study id with other content elsewhere.
    let other = a.path("other.db");
    std::fs::copy(&a.db, &other).unwrap();
    duckdb::Connection::open(&other).unwrap().execute_batch("UPDATE studies SET epochs = 99").unwrap();
    let err = a.fails(&["merge", other.to_str().unwrap()]);
    assert!(err.contains("merge refused: studies study_name=st") && err.contains("nothing was written"), "{err}");
    assert_eq!(a.dump(), before);

    // A dataset name that holds other data here.
    let renamed = a.path("renamed.db");
    let b = Env::new();
    b.ok(&["data", "synth", "--tickers", "3", "--days", "300", "--seed", "5", "--name", "s"]);
    std::fs::copy(&b.db, &renamed).unwrap();
    let err = a.fails(&["merge", renamed.to_str().unwrap()]);
    assert!(err.contains("dataset 's'") && err.contains("other data"), "{err}");
    assert_eq!(a.dump(), before);

    // A file of a newer hptune; a file that is not hptune's; this file itself.
    let newer = a.path("newer.db");
    std::fs::copy(&b.db, &newer).unwrap();
    duckdb::Connection::open(&newer)
        .unwrap()
        .execute_batch("INSERT INTO hptune_migrations VALUES (999, 'future', 'x', current_timestamp::TIMESTAMP, '9.9')")
        .unwrap();
    let err = a.fails(&["merge", newer.to_str().unwrap()]);
    assert!(err.contains("newer hptune") && err.contains("999"), "{err}");
    let plain = a.path("plain.db");
    duckdb::Connection::open(&plain).unwrap().execute_batch("CREATE TABLE x (a INT)").unwrap();
    assert!(a.fails(&["merge", plain.to_str().unwrap()]).contains("not an hptune database"));
    assert!(a.fails(&["merge", a.db.to_str().unwrap()]).contains("is this database"));
    assert!(a.fails(&["merge", "missing.db"]).contains("no such database file"));
    let csv = a.write("prices.csv", "date,ticker,close\n2020-01-01,A,1.0\n");
    assert!(a.fails(&["merge", csv.to_str().unwrap()]).contains("is not a DuckDB database file"));
    assert_eq!(a.dump(), before);
}
