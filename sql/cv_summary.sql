-- Cross-validation per configuration of each extended run: folds finished, mean, standard deviation, worst and best fold accuracy.
CREATE OR REPLACE VIEW cv_summary AS
SELECT c.extended_run_id,
       c.config_rank,
       c.trial_number,
       c.model_type,
       count(f.val_accuracy)                         AS folds_finished,
       count(*)                                      AS folds,
       avg(f.val_accuracy)                           AS cv_mean,
       coalesce(stddev_samp(f.val_accuracy), 0)      AS cv_std,
       min(f.val_accuracy)                           AS cv_worst,
       max(f.val_accuracy)                           AS cv_best,
       avg(f.val_loss)                               AS cv_mean_loss,
       sum(f.epochs_run)                             AS epochs_run
FROM extended_configs c
JOIN cv_folds f USING (extended_run_id, config_rank)
GROUP BY ALL
ORDER BY c.extended_run_id, c.config_rank;
