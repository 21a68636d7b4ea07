//! The state enums as DuckDB values: written as their text, read back refusing a text that names
//! no state.

use duckdb::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::backtest::Mode;
use crate::cv::Scheme;
#[cfg(test)]
use crate::model::ModelType;
use crate::search::{Phase, SampledBy, Sampler};
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

as_sql!(TrialState, RunStatus, FoldStatus, RunStage, ModelSource, Side, Role, Phase, Scheme, Mode, Sampler, SampledBy);

#[cfg(test)]
mod tests {
    use super::*;

    /// Newest first: the migrations that define CHECK constraints (later ones redefine some).
    const CHECKS: &[&str] = &[
        include_str!("../../migrations/0015_cpcv.sql"),
        include_str!("../../migrations/0014_linear_models.sql"),
        include_str!("../../migrations/0010_samplers.sql"),
        include_str!("../../migrations/0008_imported_models.sql"),
        include_str!("../../migrations/0007_states_and_lineage.sql"),
    ];

    /// Every list of values a CHECK constraint on `column` allows in `sql`, in file order.
    fn lists(sql: &str, column: &str) -> Vec<Vec<String>> {
        let needle = format!("CHECK ({column} IN (");
        sql.match_indices(&needle)
            .map(|(start, _)| {
                let list = &sql[start + needle.len()..];
                list[..list.find("))").unwrap()].split(',').map(|v| v.trim().trim_matches('\'').to_string()).collect()
            })
            .collect()
    }

    /// The values the newest CHECK constraint on `column` allows (the first in its file).
    fn allowed(column: &str) -> Vec<String> {
        CHECKS
            .iter()
            .find_map(|sql| lists(sql, column).into_iter().next())
            .unwrap_or_else(|| panic!("no CHECK on {column}"))
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
        // cv_folds.status is the status CHECK after its table in 0007; trials.sampler the second
        // sampler CHECK in 0010.
        let folds = &CHECKS[4][CHECKS[4].find("CREATE TABLE cv_folds").unwrap()..];
        assert_eq!(lists(folds, "status")[0], names(FoldStatus::ALL, FoldStatus::as_str));
        assert_eq!(allowed("sampler"), names(Sampler::ALL, Sampler::as_str));
        assert_eq!(lists(CHECKS[2], "sampler")[1], names(SampledBy::ALL, SampledBy::as_str));
        let model_types = [ModelType::Linear, ModelType::Mlp, ModelType::Lstm, ModelType::Gru];
        assert_eq!(allowed("model_type"), names(&model_types, ModelType::name));
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
