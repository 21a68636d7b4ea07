-- What `hptune diff` compares, one row per fact: per study, extended run, selection (a pipeline), final model and backtest, its settings, configuration keys, data (dataset hash, span, rows, tickers), code (version, commit, kernel path, threads, device, host, CPU, command line), results, tags and notes, as text.
CREATE OR REPLACE VIEW run_facts AS
WITH kinds AS (
    SELECT * FROM run_provenance WHERE kind IN ('study', 'extended_run', 'selection', 'final_model', 'backtest')
),
code AS (
    SELECT kind, id, 'code' AS section, key, value FROM (
        UNPIVOT (SELECT kind, id, hptune_version AS version, git_commit AS commit, kernel_path,
                        threads::VARCHAR AS threads, device, host, cpu_model, command_line FROM kinds)
        ON version, commit, kernel_path, threads, device, host, cpu_model, command_line
        INTO NAME key VALUE value)
),
data AS (
    SELECT kind, id, 'data' AS section, key, value FROM (
        UNPIVOT (SELECT k.kind, k.id, d.name AS dataset, k.dataset_hash, k.dataset_first_date::VARCHAR AS first_date,
                        k.dataset_last_date::VARCHAR AS last_date, k.dataset_rows::VARCHAR AS rows,
                        (SELECT string_agg(t.ticker, ',' ORDER BY t.position) FROM dataset_tickers t
                          WHERE t.dataset_id = k.dataset_id) AS tickers
                 FROM kinds k LEFT JOIN datasets d USING (dataset_id))
        ON dataset, dataset_hash, first_date, last_date, rows, tickers
        INTO NAME key VALUE value)
),
study_settings AS (
    SELECT study_name, key, value FROM (
        UNPIVOT (SELECT study_name, direction, n_trials::VARCHAR AS trials,
                        plan_random || '/' || plan_bayesian || '/' || plan_finetune AS plan_random_bayesian_finetune,
                        seed::VARCHAR AS seed, epochs::VARCHAR AS epochs, holdout::VARCHAR AS holdout,
                        pruning::VARCHAR AS pruning, sampler, space_toml AS space FROM studies)
        ON direction, trials, plan_random_bayesian_finetune, seed, epochs, holdout, pruning, sampler, space
        INTO NAME key VALUE value)
),
study_results AS (
    SELECT study_name, key, value FROM (
        UNPIVOT (SELECT s.study_name,
                        (SELECT round(max(value), 4)::VARCHAR FROM trials t
                          WHERE t.study_name = s.study_name AND t.state = 'COMPLETE') AS best_value,
                        (SELECT count(*)::VARCHAR FROM trials t
                          WHERE t.study_name = s.study_name AND t.state = 'COMPLETE') AS trials_complete,
                        (SELECT count(*)::VARCHAR FROM trials t
                          WHERE t.study_name = s.study_name AND t.state = 'PRUNED') AS trials_pruned,
                        (SELECT count(*)::VARCHAR FROM trials t
                          WHERE t.study_name = s.study_name AND t.state = 'FAIL') AS trials_failed
                 FROM studies s)
        ON best_value, trials_complete, trials_pruned, trials_failed
        INTO NAME key VALUE value)
),
extended_settings AS (
    SELECT extended_run_id, key, value FROM (
        UNPIVOT (SELECT extended_run_id, study_name AS study, scheme, n_folds::VARCHAR AS folds,
                        test_groups::VARCHAR AS test_groups, embargo_days::VARCHAR AS embargo_days,
                        top_n::VARCHAR AS top_n, epochs::VARCHAR AS epochs, seed::VARCHAR AS seed,
                        holdout_start::VARCHAR AS holdout_start FROM extended_runs)
        ON study, scheme, folds, test_groups, embargo_days, top_n, epochs, seed, holdout_start
        INTO NAME key VALUE value)
),
extended_results AS (
    SELECT extended_run_id, key, value FROM (
        UNPIVOT (SELECT extended_run_id, trial_number::VARCHAR AS best_trial, round(score, 4)::VARCHAR AS best_score,
                        round(cv_mean, 4)::VARCHAR AS best_cv_mean, round(cv_std, 4)::VARCHAR AS best_cv_std
                 FROM cv_vs_tuning WHERE cv_rank = 1 AND complete)
        ON best_trial, best_score, best_cv_mean, best_cv_std
        INTO NAME key VALUE value)
),
configs AS (
    SELECT 'selection' AS kind, selection_id AS id, config_json FROM selections
    UNION ALL
    SELECT 'final_model', run_id, config_json FROM training_runs WHERE stage = 'train'
),
config AS (
    SELECT c.kind, c.id, 'config' AS section, k.key, json_extract_string(c.config_json, '$."' || k.key || '"') AS value
    FROM configs c, LATERAL (SELECT unnest(json_keys(c.config_json)) AS key) k
),
final_settings AS (
    SELECT run_id, key, value FROM (
        UNPIVOT (SELECT run_id, seed::VARCHAR AS seed, train_start || ' .. ' || train_end AS train_span,
                        val_start || ' .. ' || val_end AS val_span, holdout_start::VARCHAR AS holdout_start,
                        config_source AS configuration_from
                 FROM training_runs WHERE stage = 'train')
        ON seed, train_span, val_span, holdout_start, configuration_from
        INTO NAME key VALUE value)
),
final_results AS (
    SELECT run_id, key, value FROM (
        UNPIVOT (SELECT run_id, status, epochs_run::VARCHAR AS epochs_run, best_epoch::VARCHAR AS best_epoch,
                        round(best_val_loss, 4)::VARCHAR AS val_loss, round(best_val_accuracy, 4)::VARCHAR AS val_accuracy
                 FROM training_runs WHERE stage = 'train')
        ON status, epochs_run, best_epoch, val_loss, val_accuracy
        INTO NAME key VALUE value)
),
backtest_settings AS (
    SELECT backtest_id, key, value FROM (
        UNPIVOT (SELECT backtest_id, run_id AS model_run, start_date || ' .. ' || end_date AS span,
                        in_sample::VARCHAR AS in_sample, mode, threshold::VARCHAR AS threshold, fill,
                        commission_bps::VARCHAR AS commission_bps, slippage_bps::VARCHAR AS slippage_bps,
                        initial_cash::VARCHAR AS initial_cash FROM backtests)
        ON model_run, span, in_sample, mode, threshold, fill, commission_bps, slippage_bps, initial_cash
        INTO NAME key VALUE value)
),
backtest_results AS (
    SELECT backtest_id, name AS key, round(value, 4)::VARCHAR AS value
    FROM backtest_stats
    WHERE scope = 'portfolio' AND strategy = 'model'
      AND name IN ('Return [%]', 'Sharpe Ratio', 'Max. Drawdown [%]', '# Trades', 'Win Rate [%]',
                   'Direction Accuracy [%]', 'Probabilistic Sharpe Ratio', 'Deflated Sharpe Ratio', 'Trials Deflated For')
),
pipeline_results AS (
    SELECT selection_id, key, value FROM (
        UNPIVOT (SELECT h.selection_id, round(h.best_tuning_value, 4)::VARCHAR AS best_tuning_value,
                        h.best_baseline, round(h.baseline_accuracy, 4)::VARCHAR AS baseline_accuracy,
                        round(h.p_chance, 4)::VARCHAR AS p_chance, round(h.pbo, 4)::VARCHAR AS pbo,
                        round(sv.effective_trials, 1)::VARCHAR AS effective_trials,
                        round(h.cv_mean, 4)::VARCHAR AS cv_mean, round(h.cv_std, 4)::VARCHAR AS cv_std,
                        round(h.final_val_accuracy, 4)::VARCHAR AS final_val_accuracy,
                        round(h.backtest_return_pct, 4)::VARCHAR AS backtest_return_pct,
                        (SELECT round(value, 4)::VARCHAR FROM backtest_stats x WHERE x.backtest_id = h.backtest_id
                           AND x.scope = 'portfolio' AND x.strategy = 'model' AND x.name = 'Sharpe Ratio') AS backtest_sharpe,
                        (SELECT round(value, 4)::VARCHAR FROM backtest_stats x WHERE x.backtest_id = h.backtest_id
                           AND x.scope = 'portfolio' AND x.strategy = 'model'
                           AND x.name = 'Deflated Sharpe Ratio') AS backtest_dsr
                 FROM pipeline_history h LEFT JOIN selection_validity sv USING (selection_id))
        ON best_tuning_value, best_baseline, baseline_accuracy, p_chance, pbo, effective_trials, cv_mean, cv_std,
           final_val_accuracy, backtest_return_pct, backtest_sharpe, backtest_dsr
        INTO NAME key VALUE value)
)
SELECT * FROM code
UNION ALL SELECT * FROM data
UNION ALL SELECT * FROM config
UNION ALL SELECT 'study', study_name, 'settings', key, value FROM study_settings
UNION ALL SELECT 'study', study_name, 'results', key, value FROM study_results
UNION ALL SELECT 'extended_run', extended_run_id, 'settings', key, value FROM extended_settings
UNION ALL SELECT 'extended_run', extended_run_id, 'results', key, value FROM extended_results
UNION ALL SELECT 'final_model', run_id, 'settings', key, value FROM final_settings
UNION ALL SELECT 'final_model', run_id, 'results', key, value FROM final_results
UNION ALL SELECT 'backtest', backtest_id, 'settings', key, value FROM backtest_settings
UNION ALL SELECT 'backtest', backtest_id, 'results', key, value FROM backtest_results
-- A selection is a pipeline: its study's and extended run's settings, and what followed it.
UNION ALL SELECT 'selection', s.selection_id, 'settings', 'study ' || st.key, st.value
          FROM selections s JOIN study_settings st USING (study_name)
UNION ALL SELECT 'selection', s.selection_id, 'settings', 'cv ' || e.key, e.value
          FROM selections s JOIN extended_settings e USING (extended_run_id) WHERE e.key <> 'study'
UNION ALL SELECT 'selection', s.selection_id, 'settings', 'backtest ' || b.key, b.value
          FROM pipeline_history s JOIN backtest_settings b USING (backtest_id) WHERE b.key <> 'model_run'
UNION ALL SELECT 'selection', selection_id, 'results', key, value FROM pipeline_results
UNION ALL SELECT kind, id, 'tags', key, value FROM tags
UNION ALL SELECT kind, id, 'notes', 'note ' || number, text FROM notes;
