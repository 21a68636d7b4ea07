-- Every dataset: tickers in canonical order, date span, rows and missing (date, ticker) cells.
CREATE OR REPLACE VIEW datasets_overview AS
SELECT d.name,
       d.dataset_id,
       d.n_tickers,
       (SELECT string_agg(t.ticker, ',' ORDER BY t.position)
          FROM dataset_tickers t WHERE t.dataset_id = d.dataset_id) AS tickers,
       d.first_date,
       d.last_date,
       d.n_dates,
       d.n_rows AS rows,
       d.n_dates::BIGINT * d.n_tickers - d.n_rows AS missing_cells,
       d.has_ohlcv,
       d.source,
       d.imported_at
FROM datasets d
ORDER BY d.imported_at, d.name;
