-- The newest selection recorded by `hptune analyze` (what `hptune query best-config` shows), with the numbers of the rule that chose it.
CREATE OR REPLACE VIEW current_selection AS
SELECT s.selection_id,
       s.selected_at,
       s.study_name,
       s.trial_number,
       s.extended_run_id,
       b.model_type,
       b.score,
       b.cv_mean,
       b.cv_std,
       b.cv_worst,
       b.tuning_value,
       b.improvement,
       s.rule,
       s.config_json
FROM selections s
LEFT JOIN cv_vs_tuning b ON b.extended_run_id = s.extended_run_id AND b.tuning_rank = s.config_rank
ORDER BY s.selected_at DESC, s.selection_id DESC
LIMIT 1;
