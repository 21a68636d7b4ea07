-- Per validation date, what each complete trial's calls came to: share of tickers called right, mean log-loss, next-day long-flat return (the series behind every selection statistic). Rows in no set order (a year holds millions): filter by study and ORDER BY date.
CREATE OR REPLACE VIEW trial_outcomes AS
SELECT t.study_name,
       t.number,
       t.phase,
       o.date,
       o.hit,
       o.log_loss,
       o.ret
FROM trials t
JOIN outcomes o ON o.source = t.run_id
WHERE t.state = 'COMPLETE';
