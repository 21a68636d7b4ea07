-- Datasets: market data panels, identified by the hash of their content.
CREATE TABLE datasets (
    dataset_id     VARCHAR PRIMARY KEY,   -- first 16 hex digits of content_hash
    name           VARCHAR NOT NULL UNIQUE,
    content_hash   VARCHAR NOT NULL UNIQUE, -- sha256 of tickers in order and every (date, ticker, values) row
    source         VARCHAR NOT NULL,      -- file, folder or 'synth ...' arguments it came from
    has_ohlcv      BOOLEAN NOT NULL,
    n_tickers      INTEGER NOT NULL,
    n_dates        INTEGER NOT NULL,
    n_rows         BIGINT  NOT NULL,
    first_date     DATE    NOT NULL,
    last_date      DATE    NOT NULL,
    hptune_version VARCHAR NOT NULL,
    imported_at    TIMESTAMP NOT NULL
);

-- The canonical ticker order of each dataset: models store and use this order.
CREATE TABLE dataset_tickers (
    dataset_id VARCHAR NOT NULL,
    position   INTEGER NOT NULL,          -- 0-based
    ticker     VARCHAR NOT NULL,
    PRIMARY KEY (dataset_id, position)
);

-- One row per (dataset, date, ticker). open/high/low/volume are NULL for close-only data.
CREATE TABLE prices (
    dataset_id VARCHAR NOT NULL,
    date       DATE    NOT NULL,
    ticker     VARCHAR NOT NULL,
    open       DOUBLE,
    high       DOUBLE,
    low        DOUBLE,
    close      DOUBLE  NOT NULL,
    volume     DOUBLE
);
