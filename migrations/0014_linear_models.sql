-- The linear model (logistic regression on the window) is a model type beside mlp, lstm and gru.
-- DuckDB cannot change a constraint, so training_runs is rebuilt with its rows.

ALTER TABLE training_runs RENAME TO training_runs_0013;
CREATE TABLE training_runs (
    run_id            VARCHAR PRIMARY KEY,
    stage             VARCHAR NOT NULL CHECK (stage IN ('tune', 'extend', 'train', 'import')),
    dataset_id        VARCHAR NOT NULL,
    model_type        VARCHAR NOT NULL CHECK (model_type IN ('linear', 'mlp', 'lstm', 'gru')),
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
INSERT INTO training_runs SELECT * FROM training_runs_0013;
DROP TABLE training_runs_0013;
