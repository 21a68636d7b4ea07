-- Per dataset and ticker, in canonical order: first and last date, rows, and dates the ticker lacks.
CREATE OR REPLACE VIEW ticker_coverage AS
SELECT d.name AS dataset,
       t.position,
       t.ticker,
       min(p.date) AS first_date,
       max(p.date) AS last_date,
       count(p.date) AS rows,
       d.n_dates - count(p.date) AS missing_dates
FROM datasets d
JOIN dataset_tickers t ON t.dataset_id = d.dataset_id
LEFT JOIN prices p ON p.dataset_id = t.dataset_id AND p.ticker = t.ticker
GROUP BY d.name, d.n_dates, t.position, t.ticker
ORDER BY d.name, t.position;
