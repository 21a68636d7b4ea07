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
       -- Values as a person writes them: names and whole numbers as they are, fractions to 4
       -- significant digits, very small or large ones in scientific notation with 3.
       (SELECT string_agg(p.name || '=' || CASE
                  WHEN p.value_num IS NULL THEN trim(p.value_json, '"')
                  WHEN NOT regexp_matches(p.value_json, '[.eE]') THEN p.value_json
                  WHEN p.value_num = 0 THEN '0'
                  WHEN abs(p.value_num) < 0.01 OR abs(p.value_num) >= 1e4 THEN printf('%.2e', p.value_num)
                  ELSE CAST(round(p.value_num, 3 - floor(log10(abs(p.value_num)))::INT) AS VARCHAR) END,
                  ' ' ORDER BY p.name)
          FROM trial_params p WHERE p.study_name = t.study_name AND p.number = t.number) AS params,
       t.pruned_epoch,
       t.duration_s
FROM trials t
WHERE t.state IN ('COMPLETE', 'PRUNED')
ORDER BY t.study_name, rank;
