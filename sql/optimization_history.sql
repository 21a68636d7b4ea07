-- Every trial of every study in number order, with the best value so far.
CREATE OR REPLACE VIEW optimization_history AS
SELECT study_name,
       number,
       phase,
       sampler,
       state,
       value,
       max(CASE WHEN state = 'COMPLETE' THEN value END)
           OVER (PARTITION BY study_name ORDER BY number ROWS UNBOUNDED PRECEDING) AS best_value,
       started_at,
       finished_at,
       duration_s,
       reason
FROM trials
ORDER BY study_name, number;
