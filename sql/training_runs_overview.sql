-- Every training run: stage, lineage (study and trial, extended run and fold, or selection), dataset, model type, spans, status, best epoch and validation metrics.
CREATE OR REPLACE VIEW training_runs_overview AS
SELECT r.run_id,
       r.stage,
       r.study_name, r.trial_number, r.extended_run_id, r.config_rank, r.fold, r.selection_id,
       d.name AS dataset,
       r.model_type,
       r.seed,
       r.train_start, r.train_end, r.val_start, r.val_end, r.holdout_start,
       r.status,
       r.epochs_run,
       r.best_epoch,
       r.best_val_loss,
       r.best_val_accuracy,
       r.started_at,
       r.finished_at,
       r.reason
FROM training_runs r
LEFT JOIN datasets d USING (dataset_id)
ORDER BY r.started_at;
