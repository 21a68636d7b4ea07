-- Every analysis in the file, newest first, with what followed it: date, dataset, study, best tuning value against the best baseline and chance, cross-validated value, selected configuration, final training and backtest return. Compare runs across weeks here.
CREATE OR REPLACE VIEW pipeline_history AS
WITH final AS (
    SELECT r.selection_id,
           arg_max(r.run_id, r.started_at)            AS final_run_id,
           arg_max(r.best_val_accuracy, r.started_at) AS final_val_accuracy
    FROM training_runs r
    WHERE r.stage = 'train' AND r.status = 'finished' AND r.selection_id IS NOT NULL
    GROUP BY 1
), tested AS (
    SELECT b.run_id,
           arg_max(b.backtest_id, b.created_at) AS backtest_id
    FROM backtests b
    WHERE NOT b.in_sample
    GROUP BY 1
)
SELECT s.selected_at::DATE                         AS date,
       date_trunc('week', s.selected_at)::DATE     AS week,
       d.name                                      AS dataset,
       s.study_name,
       (SELECT max(t.value) FROM trials t
         WHERE t.study_name = s.study_name AND t.state = 'COMPLETE') AS best_tuning_value,
       sv.best_baseline,
       sv.baseline_accuracy,
       sv.p_chance,
       sv.pbo,
       v.cv_mean,
       v.cv_std,
       v.model_type,
       s.config_json                               AS selected_config,
       f.final_val_accuracy,
       (SELECT value FROM backtest_stats x WHERE x.backtest_id = bt.backtest_id AND x.scope = 'portfolio'
          AND x.strategy = 'model' AND x.name = 'Return [%]')        AS backtest_return_pct,
       (SELECT value FROM backtest_stats x WHERE x.backtest_id = bt.backtest_id AND x.scope = 'portfolio'
          AND x.strategy = 'buy_and_hold' AND x.name = 'Return [%]') AS buy_and_hold_return_pct,
       s.selection_id,
       s.extended_run_id,
       f.final_run_id,
       bt.backtest_id
FROM selections s
LEFT JOIN datasets d USING (dataset_id)
LEFT JOIN cv_vs_tuning v ON v.extended_run_id = s.extended_run_id AND v.tuning_rank = s.config_rank
LEFT JOIN final f USING (selection_id)
LEFT JOIN tested bt ON bt.run_id = f.final_run_id
LEFT JOIN selection_validity sv ON sv.selection_id = s.selection_id
ORDER BY s.selected_at DESC;
