-- States as CHECK constraints (the lists are hptune's enums in src/states.rs, src/search,
-- src/cv.rs and src/backtest; a test keeps them equal), lineage in columns instead of in
-- run ids and config_source text, and the worker and heartbeat of training and extended runs so
-- that a run whose process died is recognised as the trials' are. DuckDB cannot add a constraint
-- to a table, so each table is rebuilt with its rows.

ALTER TABLE training_runs RENAME TO training_runs_0006;
CREATE TABLE training_runs (
    run_id            VARCHAR PRIMARY KEY,
    stage             VARCHAR NOT NULL CHECK (stage IN ('tune', 'extend', 'train')),
    dataset_id        VARCHAR NOT NULL,
    model_type        VARCHAR NOT NULL CHECK (model_type IN ('mlp', 'lstm', 'gru')),
    config_json       VARCHAR NOT NULL,
    config_source     VARCHAR NOT NULL,   -- where the configuration came from, in words
    seed              BIGINT  NOT NULL,
    device            VARCHAR NOT NULL,
    tickers_json      VARCHAR NOT NULL,
    train_start       DATE    NOT NULL,
    train_end         DATE    NOT NULL,
    val_start         DATE    NOT NULL,
    val_end           DATE    NOT NULL,
    holdout_start     DATE,
    status            VARCHAR NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    reason            VARCHAR,
    epochs_run        INTEGER,
    best_epoch        INTEGER,
    best_val_loss     DOUBLE,
    best_val_accuracy DOUBLE,
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    hptune_version    VARCHAR NOT NULL,
    study_name        VARCHAR,            -- a tuning trial's run: its study and trial
    trial_number      INTEGER,
    extended_run_id   VARCHAR,            -- a fold's run: its extended run, configuration and fold
    config_rank       INTEGER,
    fold              INTEGER,
    selection_id      VARCHAR,            -- a final training of a selection
    worker            VARCHAR,            -- host:pid:pid-namespace of the process training it
    heartbeat_at      TIMESTAMP           -- renewed while it trains
);
INSERT INTO training_runs
SELECT r.*,
       CASE WHEN r.stage = 'tune' THEN regexp_extract(r.run_id, '^(.*)/trial-([0-9]+)$', 1) END,
       CASE WHEN r.stage = 'tune' THEN TRY_CAST(regexp_extract(r.run_id, '^(.*)/trial-([0-9]+)$', 2) AS INTEGER) END,
       CASE WHEN r.stage = 'extend' THEN regexp_extract(r.run_id, '^([^/]*)/config-([0-9]+)/fold-([0-9]+)', 1) END,
       CASE WHEN r.stage = 'extend' THEN TRY_CAST(regexp_extract(r.run_id, '^([^/]*)/config-([0-9]+)/fold-([0-9]+)', 2) AS INTEGER) END,
       CASE WHEN r.stage = 'extend' THEN TRY_CAST(regexp_extract(r.run_id, '^([^/]*)/config-([0-9]+)/fold-([0-9]+)', 3) AS INTEGER) END,
       CASE WHEN starts_with(r.config_source, 'selection ') THEN substr(r.config_source, length('selection ') + 1) END,
       NULL,
       NULL
FROM training_runs_0006 r;
DROP TABLE training_runs_0006;

ALTER TABLE checkpoints RENAME TO checkpoints_0006;
CREATE TABLE checkpoints (
    checkpoint_id VARCHAR PRIMARY KEY,
    run_id        VARCHAR NOT NULL,
    role          VARCHAR NOT NULL CHECK (role IN ('best', 'final')),
    epoch         INTEGER NOT NULL,
    path          VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    size_bytes    BIGINT  NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
INSERT INTO checkpoints SELECT * FROM checkpoints_0006;
DROP TABLE checkpoints_0006;

ALTER TABLE trials RENAME TO trials_0006;
CREATE TABLE trials (
    study_name   VARCHAR NOT NULL,
    number       INTEGER NOT NULL,
    phase        VARCHAR NOT NULL CHECK (phase IN ('random', 'bayesian', 'finetune')),
    state        VARCHAR NOT NULL CHECK (state IN ('RUNNING', 'COMPLETE', 'PRUNED', 'FAIL')),
    value        DOUBLE,
    val_loss     DOUBLE,
    run_id       VARCHAR,
    worker       VARCHAR NOT NULL,
    pruned_epoch INTEGER,
    reason       VARCHAR,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    duration_s   DOUBLE,
    heartbeat_at TIMESTAMP NOT NULL,
    PRIMARY KEY (study_name, number)
);
INSERT INTO trials SELECT * FROM trials_0006;
DROP TABLE trials_0006;

ALTER TABLE extended_runs RENAME TO extended_runs_0006;
CREATE TABLE extended_runs (
    extended_run_id VARCHAR PRIMARY KEY,
    study_name      VARCHAR NOT NULL,
    dataset_id      VARCHAR NOT NULL,
    scheme          VARCHAR NOT NULL CHECK (scheme IN ('walk-forward', 'purged-kfold')),
    n_folds         INTEGER NOT NULL,
    embargo_days    INTEGER NOT NULL,
    label_horizon   INTEGER NOT NULL,
    top_n           INTEGER NOT NULL,
    epochs          INTEGER NOT NULL,
    seed            BIGINT  NOT NULL,
    holdout_start   DATE,
    status          VARCHAR NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    reason          VARCHAR,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    hptune_version  VARCHAR NOT NULL,
    worker          VARCHAR,            -- host:pid:pid-namespace of the process running it
    heartbeat_at    TIMESTAMP           -- renewed while it runs
);
INSERT INTO extended_runs SELECT *, NULL, NULL FROM extended_runs_0006;
DROP TABLE extended_runs_0006;

ALTER TABLE cv_folds RENAME TO cv_folds_0006;
CREATE TABLE cv_folds (
    extended_run_id VARCHAR NOT NULL,
    config_rank     INTEGER NOT NULL,
    fold            INTEGER NOT NULL,
    train_start     DATE    NOT NULL,
    train_end       DATE    NOT NULL,
    val_start       DATE    NOT NULL,
    val_end         DATE    NOT NULL,
    n_train         INTEGER NOT NULL,
    n_val           INTEGER NOT NULL,
    n_purged        INTEGER NOT NULL,
    n_embargoed     INTEGER NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('pending', 'running', 'finished', 'failed')),
    run_id          VARCHAR,
    checkpoint_id   VARCHAR,
    epochs_run      INTEGER,
    best_epoch      INTEGER,
    val_loss        DOUBLE,
    val_accuracy    DOUBLE,
    reason          VARCHAR,
    PRIMARY KEY (extended_run_id, config_rank, fold)
);
INSERT INTO cv_folds SELECT * FROM cv_folds_0006;
DROP TABLE cv_folds_0006;

ALTER TABLE backtests RENAME TO backtests_0006;
CREATE TABLE backtests (
    backtest_id      VARCHAR PRIMARY KEY,
    run_id           VARCHAR NOT NULL,
    checkpoint_id    VARCHAR NOT NULL,
    model_source     VARCHAR NOT NULL CHECK (model_source IN ('path', 'final', 'extended', 'tuning', 'default')),
    dataset_id       VARCHAR NOT NULL,
    tickers_json     VARCHAR NOT NULL,
    start_date       DATE    NOT NULL,
    end_date         DATE    NOT NULL,
    first_unseen     DATE,
    in_sample        BOOLEAN NOT NULL,
    mode             VARCHAR NOT NULL CHECK (mode IN ('long-flat', 'long-short')),
    threshold        DOUBLE  NOT NULL,
    fill             VARCHAR NOT NULL CHECK (fill IN ('next-open', 'close')),
    commission_bps   DOUBLE  NOT NULL,
    slippage_bps     DOUBLE  NOT NULL,
    initial_cash     DOUBLE  NOT NULL,
    accuracy         DOUBLE,
    n_predictions    INTEGER NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    hptune_version   VARCHAR NOT NULL
);
INSERT INTO backtests SELECT * FROM backtests_0006;
DROP TABLE backtests_0006;

ALTER TABLE backtest_trades RENAME TO backtest_trades_0006;
CREATE TABLE backtest_trades (
    backtest_id  VARCHAR NOT NULL,
    trade_no     INTEGER NOT NULL,
    ticker       VARCHAR NOT NULL,
    side         VARCHAR NOT NULL CHECK (side IN ('long', 'short')),
    entry_date   DATE    NOT NULL,
    entry_price  DOUBLE  NOT NULL,
    exit_date    DATE    NOT NULL,
    exit_price   DOUBLE  NOT NULL,
    size         DOUBLE  NOT NULL,
    pnl          DOUBLE  NOT NULL,
    return_pct   DOUBLE  NOT NULL,
    commission   DOUBLE  NOT NULL,
    slippage     DOUBLE  NOT NULL,
    PRIMARY KEY (backtest_id, trade_no)
);
INSERT INTO backtest_trades SELECT * FROM backtest_trades_0006;
DROP TABLE backtest_trades_0006;
