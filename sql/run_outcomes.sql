-- Per validation date, what each training run's best epoch called (trials, cross-validation folds, final models) and each study's baselines: hit share, log-loss, next-day long-flat return. Rows in no set order (a year holds millions): filter by study and ORDER BY date.
CREATE OR REPLACE VIEW run_outcomes AS
SELECT r.stage,
       r.run_id                AS source,
       r.study_name,
       r.trial_number,
       r.extended_run_id,
       r.config_rank,
       r.fold,
       r.selection_id,
       o.date,
       o.hit,
       o.log_loss,
       o.ret
FROM outcomes o
JOIN training_runs r ON r.run_id = o.source
UNION ALL
SELECT 'baseline', b.source, b.study_name, NULL, NULL, NULL, NULL, NULL, o.date, o.hit, o.log_loss, o.ret
FROM outcomes o
JOIN baselines b ON b.source = o.source;
