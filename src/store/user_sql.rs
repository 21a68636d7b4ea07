//! The SQL a user hands `hptune query`: one statement of a reading kind, run on a read-only
//! connection with DuckDB's external access off and its configuration locked, so that it can
//! read the record and nothing else (no COPY to files, ATTACH, INSTALL/LOAD, reading files).

use duckdb::Connection;

use super::StoreError;

/// The statement kinds `hptune query` runs (DuckDB's FROM-first and TABLE forms read too).
const READING: &[&str] =
    &["SELECT", "WITH", "VALUES", "DESCRIBE", "SHOW", "EXPLAIN", "SUMMARIZE", "FROM", "TABLE", "PIVOT", "UNPIVOT"];

/// The statement without its trailing semicolon, if it is one statement of a reading kind.
pub fn statement(sql: &str) -> Result<&str, StoreError> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    if has_second_statement(sql) {
        return Err(StoreError::ReadOnly(
            "one statement per call: run each statement with its own hptune query".into(),
        ));
    }
    let word: String = skip_comments(sql)
        .trim_start_matches(|c: char| c == '(' || c.is_whitespace())
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if !READING.contains(&word.to_ascii_uppercase().as_str()) {
        let shown = if word.is_empty() { sql.chars().take(20).collect() } else { word };
        return Err(StoreError::ReadOnly(format!(
            "'{shown}' is not a reading statement; hptune query runs one of {}",
            READING.join(", ")
        )));
    }
    Ok(sql)
}

/// Whether a `;` outside strings, quoted names and comments separates two statements. (DuckDB's
/// prepare would run every statement but the last at once, so this is checked before.)
fn has_second_statement(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => return !skip_comments(&sql[i + 1..]).trim_start_matches(';').trim().is_empty(),
            _ => {}
        }
        i += 1;
    }
    false
}

fn skip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return s;
        }
    }
}

/// Turns external access off on `conn` and
/// locks the configuration. The connection must be discarded afterwards.
pub fn sandbox(conn: &Connection) -> duckdb::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    conn.execute_batch(&format!(
        "SET threads = {threads}; SET enable_external_access = false; SET lock_configuration = true"
    ))
}

/// DuckDB's refusals of user SQL, with what to do instead.
pub fn hint(e: duckdb::Error) -> StoreError {
    let msg = e.to_string();
    if msg.contains("read-only mode") || msg.contains("read only mode") {
        return StoreError::ReadOnly(format!("{msg}. Change data with hptune's commands (data import, ...)"));
    }
    if msg.contains("multiple statements") {
        return StoreError::ReadOnly("one statement per call: run each statement with its own hptune query".into());
    }
    if msg.contains("external access") || msg.contains("Permission Error") || msg.contains("disabled by configuration")
    {
        return StoreError::ExternalAccess(msg);
    }
    e.into()
}

#[cfg(test)]
mod tests {
    use super::statement;

    #[test]
    fn reading_kinds_pass_and_others_are_refused() {
        for ok in [
            "SELECT 1",
            "  with a AS (SELECT 1) SELECT * FROM a;",
            "-- c\n/* d */ (SELECT 1)",
            "FROM trials",
            "describe trials",
        ] {
            assert!(statement(ok).is_ok(), "{ok}");
        }
        for bad in [
            "COPY trials TO 'x.csv'",
            "ATTACH 'x.db'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "DELETE FROM trials",
            "SET threads = 1",
            "PRAGMA version",
            "",
        ] {
            assert!(statement(bad).is_err(), "{bad}");
        }
    }
}
