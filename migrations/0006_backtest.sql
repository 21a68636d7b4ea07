-- Backtests: a model (its training run and checkpoint) simulated on a dataset's prices.
CREATE TABLE backtests (
    backtest_id      VARCHAR PRIMARY KEY,
    run_id           VARCHAR NOT NULL,   -- the model's training run
    checkpoint_id    VARCHAR NOT NULL,
    model_source     VARCHAR NOT NULL,   -- final | extended | tuning | default | path
    dataset_id       VARCHAR NOT NULL,
    tickers_json     VARCHAR NOT NULL,   -- the model's tickers, in the model's order
    start_date       DATE    NOT NULL,   -- first and last simulated day
    end_date         DATE    NOT NULL,
    first_unseen     DATE,               -- first day after the model's training data
    in_sample        BOOLEAN NOT NULL,   -- true when the period overlaps the training data (--include-training)
    mode             VARCHAR NOT NULL,   -- long-flat | long-short
    threshold        DOUBLE  NOT NULL,   -- up-probability above which the position is long
    fill             VARCHAR NOT NULL,   -- next-open | close
    commission_bps   DOUBLE  NOT NULL,
    slippage_bps     DOUBLE  NOT NULL,
    initial_cash     DOUBLE  NOT NULL,
    accuracy         DOUBLE,             -- share of (day, ticker) predictions with the right next-day direction
    n_predictions    INTEGER NOT NULL,   -- predictions whose next close is in the period
    created_at       TIMESTAMP NOT NULL,
    hptune_version   VARCHAR NOT NULL
);

CREATE TABLE backtest_trades (
    backtest_id  VARCHAR NOT NULL,
    trade_no     INTEGER NOT NULL,       -- in order of entry, then ticker
    ticker       VARCHAR NOT NULL,
    side         VARCHAR NOT NULL,       -- long | short
    entry_date   DATE    NOT NULL,
    entry_price  DOUBLE  NOT NULL,       -- fill prices, slippage included
    exit_date    DATE    NOT NULL,
    exit_price   DOUBLE  NOT NULL,
    size         DOUBLE  NOT NULL,       -- units
    pnl          DOUBLE  NOT NULL,       -- net of commission
    return_pct   DOUBLE  NOT NULL,       -- backtesting.py's ReturnPct (a fraction)
    commission   DOUBLE  NOT NULL,
    slippage     DOUBLE  NOT NULL,       -- what slippage cost against unslipped prices
    PRIMARY KEY (backtest_id, trade_no)
);

-- Daily equity of the strategy and of buy and hold of the same tickers, at each close.
CREATE TABLE backtest_equity (
    backtest_id  VARCHAR NOT NULL,
    date         DATE    NOT NULL,
    equity       DOUBLE  NOT NULL,
    benchmark    DOUBLE  NOT NULL,
    drawdown_pct DOUBLE  NOT NULL,       -- below the running peak of equity, in percent (<= 0)
    positions    INTEGER NOT NULL,       -- tickers with an open position at the close
    PRIMARY KEY (backtest_id, date)
);

-- Statistics under backtesting.py's names, for the portfolio and each ticker, for the strategy
-- and its benchmark. NULL where undefined (no trades, no losing trade, ...).
CREATE TABLE backtest_stats (
    backtest_id VARCHAR NOT NULL,
    scope       VARCHAR NOT NULL,        -- portfolio, or a ticker
    strategy    VARCHAR NOT NULL,        -- model | buy_and_hold
    position    INTEGER NOT NULL,        -- the statistic's place in backtesting.py's order
    name        VARCHAR NOT NULL,
    value       DOUBLE,
    PRIMARY KEY (backtest_id, scope, strategy, name)
);

-- The latest signal per ticker of a model, as `hptune backtest --generate-signals` made it.
CREATE TABLE signals (
    generated_at  TIMESTAMP NOT NULL,
    run_id        VARCHAR NOT NULL,
    checkpoint_id VARCHAR NOT NULL,
    dataset_id    VARCHAR NOT NULL,
    date          DATE    NOT NULL,      -- the close the signal is decided at
    ticker        VARCHAR NOT NULL,
    probability   DOUBLE  NOT NULL,      -- the model's probability that the next close is higher
    position      INTEGER NOT NULL,      -- 1 long, 0 flat, -1 short
    mode          VARCHAR NOT NULL,
    threshold     DOUBLE  NOT NULL
);
