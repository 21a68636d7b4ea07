-- Finished tuning trials of every study, best first: value, phase, sampler, state, parameters, duration.
CREATE OR REPLACE VIEW tuning_leaderboard AS
SELECT t.study_name,
       rank() OVER (PARTITION BY t.study_name ORDER BY t.value DESC NULLS LAST, t.number) AS rank,
       t.number,
       t.phase,
       t.sampler,
       t.state,
       t.value,
       t.val_loss,
       (SELECT string_agg(p.name || '=' || p.value_json, ' ' ORDER BY p.name)
          FROM trial_params p WHERE p.study_name = t.study_name AND p.number = t.number) AS params,
       t.pruned_epoch,
       t.duration_s
FROM trials t
WHERE t.state IN ('COMPLETE', 'PRUNED')
ORDER BY t.study_name, rank;
