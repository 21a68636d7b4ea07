-- Where each run came from: per study, training run (trial, fold, final or imported model), extended run, selection and backtest, the hptune version and build commit, command line, host, CPU model, kernel path, threads and device of the process that wrote it, and its dataset's content hash, span and rows; 'unknown' where a row was written before hptune recorded them.
CREATE OR REPLACE VIEW run_provenance AS
WITH runs AS (
    SELECT 'study' AS kind, study_name AS id, dataset_id, created_at AS recorded_at, hptune_version, provenance_id
    FROM studies
    UNION ALL
    SELECT CASE stage WHEN 'tune' THEN 'trial_run' WHEN 'extend' THEN 'fold_run' WHEN 'train' THEN 'final_model'
                      ELSE 'imported_model' END,
           run_id, dataset_id, started_at, hptune_version, provenance_id
    FROM training_runs
    UNION ALL
    SELECT 'extended_run', extended_run_id, dataset_id, started_at, hptune_version, provenance_id FROM extended_runs
    UNION ALL
    SELECT 'selection', selection_id, dataset_id, selected_at, hptune_version, provenance_id FROM selections
    UNION ALL
    SELECT 'backtest', backtest_id, dataset_id, created_at, hptune_version, provenance_id FROM backtests
)
SELECT r.kind,
       r.id,
       r.recorded_at,
       r.hptune_version,
       coalesce(p.git_commit, 'unknown')      AS git_commit,
       coalesce(p.command_line, 'unknown')    AS command_line,
       coalesce(p.host, 'unknown')            AS host,
       coalesce(p.cpu_model, 'unknown')       AS cpu_model,
       coalesce(p.kernel_path, 'unknown')     AS kernel_path,
       p.threads,
       coalesce(p.device, 'unknown')          AS device,
       r.dataset_id,
       d.content_hash                         AS dataset_hash,
       d.first_date                           AS dataset_first_date,
       d.last_date                            AS dataset_last_date,
       d.n_rows                               AS dataset_rows,
       r.provenance_id
FROM runs r
LEFT JOIN provenance p USING (provenance_id)
LEFT JOIN datasets d USING (dataset_id)
ORDER BY r.recorded_at, r.kind, r.id;
