-- CPCV's out-of-sample paths per configuration of each cpcv extended run: each path's dates, accuracy (mean hit share per date), log-loss, long-flat mean return and annualised Sharpe, rebuilt from its splits' per-date outcomes.
CREATE OR REPLACE VIEW cpcv_path_results AS
SELECT p.extended_run_id,
       f.config_rank,
       p.path,
       count(o.date)                                        AS dates,
       avg(o.hit)                                           AS accuracy,
       avg(o.log_loss)                                      AS log_loss,
       avg(o.ret)                                           AS mean_return,
       avg(o.ret) / nullif(stddev_samp(o.ret), 0) * sqrt(252) AS sharpe,
       bool_and(f.status = 'finished')                      AS complete
FROM cpcv_paths p
JOIN cv_folds f ON f.extended_run_id = p.extended_run_id AND f.fold = p.fold
LEFT JOIN outcomes o ON o.source = f.run_id AND f.status = 'finished'
                    AND o.date BETWEEN p.group_start AND p.group_end
GROUP BY ALL
ORDER BY p.extended_run_id, f.config_rank, p.path;
