-- Is the best real? Per selection: trials tried and how many independent, the best's validation accuracy against the best of as many skill-less ones (expected, 95%, probability of chance), the best baseline, PBO, and the validation Sharpe's PSR and DSR.
CREATE OR REPLACE VIEW study_validity AS
SELECT v.study_name,
       v.selection_id,
       v.computed_at,
       v.trials_tried,
       round(v.effective_trials, 1)  AS effective_trials,
       v.best_trial,
       v.best_accuracy,
       v.validation_dates,
       v.expected_best,
       v.best_q95,
       v.p_chance,
       v.p_chance < 0.05             AS significant,
       v.best_baseline,
       v.baseline_accuracy,
       v.best_accuracy > v.baseline_accuracy AS beats_baselines,
       v.pbo,
       v.pbo_blocks,
       v.pbo_slope,
       v.sharpe_annual,
       v.psr,
       v.dsr,
       v.summary
FROM selection_validity v
ORDER BY v.computed_at DESC;
