-- Out-of-sample outcomes per date (`src/outcomes.rs`): for every trial, fold and final model
-- (`source` is its training run id) and every baseline of a study (`baseline:STUDY:NAME`), per
-- validation date: the share of tickers called right, the mean log-loss and the next day's return
-- of a long-flat strategy on the calls. Four-byte floats: a 1,000-trial study with 250
-- validation dates is 250,000 rows.
CREATE TABLE outcomes (
    source   VARCHAR NOT NULL,
    date     DATE NOT NULL,
    hit      FLOAT NOT NULL,
    log_loss FLOAT NOT NULL,
    ret      FLOAT NOT NULL,
    PRIMARY KEY (source, date)
);

-- Reference predictors scored beside a study's trials on the widest validation span its space
-- allows (`src/baselines.rs`); they count in no budget and no N.
CREATE TABLE baselines (
    study_name  VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    val_start   DATE NOT NULL,
    val_end     DATE NOT NULL,
    dates       INTEGER NOT NULL,
    accuracy    DOUBLE NOT NULL,
    log_loss    DOUBLE NOT NULL,
    mean_return DOUBLE NOT NULL,
    sharpe      DOUBLE,
    PRIMARY KEY (study_name, name)
);

-- A study's verdict as `hptune analyze` computed it for a selection (`src/stages/verdict.rs`):
-- trials tried (COMPLETE and PRUNED), their mean correlation and effective number, the best's
-- validation accuracy against the best of as many skill-less configurations, PBO, and the best's
-- validation long-flat Sharpe ratio with PSR and DSR (252 days a year).
CREATE TABLE selection_validity (
    selection_id      VARCHAR PRIMARY KEY,
    study_name        VARCHAR NOT NULL,
    computed_at       TIMESTAMP NOT NULL,
    trials_tried      INTEGER NOT NULL,
    mean_correlation  DOUBLE,
    effective_trials  DOUBLE,
    best_trial        INTEGER,
    best_accuracy     DOUBLE,
    validation_dates  INTEGER,
    expected_best     DOUBLE,
    best_q95          DOUBLE,
    p_chance          DOUBLE,
    best_baseline     VARCHAR,
    baseline_accuracy DOUBLE,
    pbo               DOUBLE,
    pbo_blocks        INTEGER,
    pbo_slope         DOUBLE,
    sharpe_annual     DOUBLE,
    psr               DOUBLE,
    dsr               DOUBLE,
    sr0               DOUBLE,             -- per day: the expected best Sharpe of the study's skill-less trials
    summary           VARCHAR NOT NULL
);
