-- Every analysis in the file, newest first: date, dataset, study, best tuning value, cross-validated value and the selected configuration, to compare runs across weeks.
CREATE OR REPLACE VIEW pipeline_history AS
SELECT s.selected_at::DATE                         AS date,
       date_trunc('week', s.selected_at)::DATE     AS week,
       d.name                                      AS dataset,
       s.study_name,
       (SELECT max(t.value) FROM trials t
         WHERE t.study_name = s.study_name AND t.state = 'COMPLETE') AS best_tuning_value,
       b.cv_mean,
       b.cv_std,
       b.model_type,
       s.config_json                               AS selected_config,
       s.selection_id,
       s.extended_run_id
FROM selections s
LEFT JOIN datasets d USING (dataset_id)
LEFT JOIN cv_vs_tuning b ON b.extended_run_id = s.extended_run_id AND b.tuning_rank = s.config_rank
ORDER BY s.selected_at DESC;
