//! The state enums as DuckDB values: written as their text, read back refusing a text that names
//! no state.

use duckdb::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::backtest::Mode;
use crate::cv::Scheme;
use crate::search::Phase;
use crate::states::{FoldStatus, ModelSource, Role, RunStage, RunStatus, Side, TrialState};

macro_rules! as_sql {
    ($($t:ty),+) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> duckdb::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$t>::parse(text).ok_or_else(|| {
                    FromSqlError::Other(format!("'{text}' is not a {}", stringify!($t)).into())
                })
            }
        }
    )+};
}

as_sql!(TrialState, RunStatus, FoldStatus, RunStage, ModelSource, Side, Role, Phase, Scheme, Mode);

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the newest CHECK constraint on `column` allows (migration 0008 redefines some of
    /// 0007's).
    fn allowed(column: &str) -> Vec<String> {
        let needle = format!("CHECK ({column} IN (");
        let newest = include_str!("../../migrations/0008_imported_models.sql");
        let sql = if newest.contains(&needle) {
            newest
        } else {
            include_str!("../../migrations/0007_states_and_lineage.sql")
        };
        let start = sql.find(&needle).unwrap_or_else(|| panic!("no CHECK on {column}"));
        let list = &sql[start..];
        let list = &list[list.find("IN (").unwrap() + 4..list.find("))").unwrap()];
        list.split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect()
    }

    fn names<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|&v| as_str(v).to_string()).collect()
    }

    #[test]
    fn the_check_constraints_allow_exactly_the_enums_states() {
        assert_eq!(allowed("state"), names(TrialState::ALL, TrialState::as_str));
        assert_eq!(allowed("status"), names(RunStatus::ALL, RunStatus::as_str));
        assert_eq!(allowed("stage"), names(RunStage::ALL, RunStage::as_str));
        assert_eq!(allowed("role"), names(Role::ALL, Role::as_str));
        assert_eq!(allowed("phase"), names(Phase::ALL, Phase::as_str));
        assert_eq!(allowed("scheme"), names(Scheme::ALL, Scheme::as_str));
        assert_eq!(allowed("model_source"), names(ModelSource::ALL, ModelSource::as_str));
        assert_eq!(allowed("mode"), names(Mode::ALL, Mode::as_str));
        assert_eq!(allowed("side"), names(Side::ALL, Side::as_str));
        // cv_folds.status is the second status CHECK in the file.
        let sql = include_str!("../../migrations/0007_states_and_lineage.sql");
        let folds = &sql[sql.find("CREATE TABLE cv_folds").unwrap()..];
        let list = &folds[folds.find("CHECK (status IN (").unwrap() + 18..];
        let list: Vec<String> =
            list[..list.find("))").unwrap()].split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect();
        assert_eq!(list, names(FoldStatus::ALL, FoldStatus::as_str));
    }

    #[test]
    fn a_stored_text_that_names_no_state_is_refused() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let ok: TrialState = conn.query_row("SELECT 'PRUNED'", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, TrialState::Pruned);
        let bad: duckdb::Result<TrialState> = conn.query_row("SELECT 'DONE'", [], |r| r.get(0));
        assert!(bad.unwrap_err().to_string().contains("'DONE' is not a TrialState"));
    }
}
