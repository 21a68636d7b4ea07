//! A study's seed trials (`tune --warm-start`): finished trials of earlier studies that its
//! sampler reads before its own.

use duckdb::params;

use super::{user_sql, Result, Store, StoreError};
use crate::search::Params;

/// One seed: where it came from, its value and the parameters the new space keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub source_study: String,
    pub source_number: usize,
    pub value: f64,
    pub params: Params,
}

impl Store {
    /// The (study, trial number) rows a user's reading statement returns, under `query`'s rules;
    /// it must have the columns `study_name` and `number` (rows of `trials`).
    pub fn trial_keys_of(&self, sql: &str) -> Result<Vec<(String, usize)>> {
        let sql = user_sql::statement(sql)?;
        let conn = self.existing_reader()?;
        let result = (|| -> Result<Vec<(String, usize)>> {
            user_sql::sandbox(&conn)?;
            let mut stmt = conn
                .prepare(&format!("SELECT DISTINCT study_name, number FROM ({sql}) ORDER BY 1, 2"))
                .map_err(|e| {
                    StoreError::ReadOnly(format!(
                        "--warm-start: the statement must return trial rows with the columns study_name and number \
                         (e.g. SELECT * FROM trials WHERE ...): {e}"
                    ))
                })?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize)))
                .map_err(user_sql::hint)?
                .collect::<duckdb::Result<_>>()?;
            Ok(rows)
        })();
        conn.discard();
        result
    }

    /// Records a new study's seeds, in order.
    pub fn record_seeds(&self, study: &str, seeds: &[Seed]) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        for (i, s) in seeds.iter().enumerate() {
            tx.execute(
                "INSERT INTO study_seeds VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    study,
                    i as i32 + 1,
                    s.source_study,
                    s.source_number as i32,
                    s.value,
                    serde_json::to_string(&s.params).expect("JSON parameters")
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A study's seeds, in order (none for a cold study).
    pub fn seeds(&self, study: &str) -> Result<Vec<Seed>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(
                "SELECT source_study, source_number, value, params_json FROM study_seeds WHERE study_name = ?
                 ORDER BY position",
            )?
            .query_map([study], |r| {
                let params: String = r.get(3)?;
                Ok(Seed {
                    source_study: r.get(0)?,
                    source_number: r.get::<_, i32>(1)? as usize,
                    value: r.get(2)?,
                    params: serde_json::from_str(&params).unwrap_or_default(),
                })
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(rows)
    }
}
