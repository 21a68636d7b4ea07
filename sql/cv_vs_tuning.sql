-- Tuning value against cross-validated value per configuration: the improvement (cv mean - tuning value), its stability, and the selection score (cv mean - cv std; with cpcv, path mean - path std).
CREATE OR REPLACE VIEW cv_vs_tuning AS
WITH paths AS (
    SELECT extended_run_id, config_rank,
           count(*)                            AS paths,
           avg(accuracy)                       AS path_mean,
           coalesce(stddev_samp(accuracy), 0)  AS path_std,
           min(accuracy)                       AS path_worst
    FROM cpcv_path_results
    GROUP BY ALL
),
scored AS (
    SELECT s.*,
           e.study_name,
           e.scheme,
           c.tuning_value,
           c.config_json,
           p.paths,
           p.path_mean,
           p.path_std,
           p.path_worst,
           CASE WHEN e.scheme = 'cpcv' THEN p.path_mean - p.path_std ELSE s.cv_mean - s.cv_std END AS score
    FROM cv_summary s
    JOIN extended_configs c USING (extended_run_id, config_rank)
    JOIN extended_runs e USING (extended_run_id)
    LEFT JOIN paths p USING (extended_run_id, config_rank)
)
SELECT extended_run_id,
       study_name,
       scheme,
       config_rank                                  AS tuning_rank,
       trial_number,
       model_type,
       tuning_value,
       cv_mean,
       cv_std,
       cv_worst,
       cv_mean - tuning_value                       AS improvement,
       score,
       rank() OVER (PARTITION BY extended_run_id
                    ORDER BY score DESC, cv_mean DESC, config_rank) AS cv_rank,
       folds_finished = folds                       AS complete,
       folds_finished,
       folds,
       paths,
       path_mean,
       path_std,
       path_worst,
       config_json
FROM scored
ORDER BY extended_run_id, cv_rank;
