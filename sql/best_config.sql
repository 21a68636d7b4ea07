-- The selection rule: per extended run whose folds all finished, the configuration with the highest cv mean - cv std (with cpcv: path mean - path std over its out-of-sample paths; ties: higher mean, then better tuning rank).
-- Mean minus one standard deviation rewards a configuration that is good on every fold, not
-- one lucky fold: a tuning value is one validation split, and the folds show how it holds up.
-- With cpcv each path is a whole out-of-sample history of the span from models that never saw
-- its dates, so the spread of the paths is how much the configuration's result over the span
-- depends on what it was trained on, where the spread of folds mixes that with how hard each
-- block of time is.
CREATE OR REPLACE VIEW best_config AS
SELECT v.extended_run_id,
       v.study_name,
       v.tuning_rank,
       v.trial_number,
       v.model_type,
       v.score,
       v.cv_mean,
       v.cv_std,
       v.cv_worst,
       v.tuning_value,
       v.improvement,
       v.folds,
       v.paths,
       v.path_mean,
       v.path_std,
       v.path_worst,
       CASE WHEN v.scheme = 'cpcv'
            THEN 'highest path mean - path std over ' || v.paths || ' cpcv paths (' || v.folds || ' splits): '
                 || round(v.score, 4) || ' = ' || round(v.path_mean, 4) || ' - ' || round(v.path_std, 4)
                 || ' (worst path ' || round(v.path_worst, 4) || ', tuning value ' || round(v.tuning_value, 4) || ')'
            ELSE 'highest cv mean - cv std over ' || v.folds || ' folds: '
         || round(v.score, 4) || ' = ' || round(v.cv_mean, 4) || ' - ' || round(v.cv_std, 4)
         || ' (worst fold ' || round(v.cv_worst, 4) || ', tuning value ' || round(v.tuning_value, 4)
         || ', improvement ' || round(v.improvement, 4) || ')' END
         || coalesce('; on the tuning validation dates the best baseline (' || bl.description || ') scored '
                     || round(bl.accuracy, 4) || ': the configuration '
                     || CASE WHEN v.tuning_value > bl.accuracy THEN 'beats it' ELSE 'loses to it' END, '') AS why,
       v.config_json
FROM cv_vs_tuning v
JOIN extended_runs e USING (extended_run_id)
LEFT JOIN (SELECT study_name, arg_max(description, accuracy) AS description, max(accuracy) AS accuracy
           FROM baselines GROUP BY 1) bl ON bl.study_name = v.study_name
WHERE e.status = 'finished' AND v.complete AND v.cv_rank = 1
ORDER BY e.started_at DESC;
