-- Tuning value against cross-validated value per configuration: the improvement (cv mean - tuning value), its stability, and the selection score (cv mean - cv std).
CREATE OR REPLACE VIEW cv_vs_tuning AS
SELECT s.extended_run_id,
       e.study_name,
       s.config_rank                                  AS tuning_rank,
       s.trial_number,
       s.model_type,
       c.tuning_value,
       s.cv_mean,
       s.cv_std,
       s.cv_worst,
       s.cv_mean - c.tuning_value                     AS improvement,
       s.cv_mean - s.cv_std                           AS score,
       rank() OVER (PARTITION BY s.extended_run_id
                    ORDER BY s.cv_mean - s.cv_std DESC, s.cv_mean DESC, s.config_rank) AS cv_rank,
       s.folds_finished = s.folds                     AS complete,
       s.folds_finished,
       s.folds,
       c.config_json
FROM cv_summary s
JOIN extended_configs c USING (extended_run_id, config_rank)
JOIN extended_runs e USING (extended_run_id)
ORDER BY s.extended_run_id, cv_rank;
