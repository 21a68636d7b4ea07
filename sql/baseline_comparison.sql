-- Per study, its best trial against each baseline scored on the same validation dates (always up, majority, repeat today, logistic regression): accuracy on the dates both have, and who wins.
CREATE OR REPLACE VIEW baseline_comparison AS
WITH best AS (
    -- The best trial as everywhere else: the highest value, the first trial among equals.
    SELECT study_name, first(run_id ORDER BY value DESC, number) AS run_id,
           first(number ORDER BY value DESC, number) AS number, max(value) AS value
    FROM trials WHERE state = 'COMPLETE' GROUP BY 1
), paired AS (
    SELECT b.study_name, b.name, b.description, avg(t.hit) AS trial_accuracy, avg(o.hit) AS baseline_accuracy,
           avg(t.ret) AS trial_mean_return, avg(o.ret) AS baseline_mean_return, count(*) AS dates
    FROM baselines b
    JOIN best USING (study_name)
    JOIN outcomes o ON o.source = b.source
    JOIN outcomes t ON t.source = best.run_id AND t.date = o.date
    GROUP BY ALL
)
SELECT p.study_name,
       best.number                                      AS best_trial,
       p.name                                           AS baseline,
       p.description,
       p.dates,
       p.trial_accuracy,
       p.baseline_accuracy,
       p.trial_accuracy - p.baseline_accuracy           AS edge,
       p.trial_mean_return,
       p.baseline_mean_return,
       CASE WHEN p.trial_accuracy > p.baseline_accuracy
            THEN 'the best trial beats ' || p.description
            ELSE 'the best trial loses to ' || p.description END AS verdict
FROM paired p
JOIN best USING (study_name)
ORDER BY p.study_name, p.baseline_accuracy DESC;
