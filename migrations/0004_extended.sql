-- Extended training: the top configurations of a study, each trained on every fold of a
-- date-based cross-validation; and the selections analysis made from them.
CREATE TABLE extended_runs (
    extended_run_id VARCHAR PRIMARY KEY,
    study_name      VARCHAR NOT NULL,
    dataset_id      VARCHAR NOT NULL,
    scheme          VARCHAR NOT NULL,   -- walk-forward | purged-kfold
    n_folds         INTEGER NOT NULL,
    embargo_days    INTEGER NOT NULL,   -- samples dropped after each validation block (purged k-fold)
    label_horizon   INTEGER NOT NULL,   -- days from a decision to the end of its label
    top_n           INTEGER NOT NULL,
    epochs          INTEGER NOT NULL,   -- most epochs per fold
    seed            BIGINT  NOT NULL,
    holdout_start   DATE,               -- first date reserved for the backtest, in no fold
    status          VARCHAR NOT NULL,   -- running | finished | failed
    reason          VARCHAR,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    hptune_version  VARCHAR NOT NULL
);

-- The configurations an extended run trains, ranked by their tuning value.
CREATE TABLE extended_configs (
    extended_run_id VARCHAR NOT NULL,
    config_rank     INTEGER NOT NULL,   -- 1 = the study's best finished trial
    trial_number    INTEGER NOT NULL,
    tuning_value    DOUBLE  NOT NULL,   -- the trial's validation accuracy
    model_type      VARCHAR NOT NULL,
    config_json     VARCHAR NOT NULL,   -- the hyperparameters trained on every fold
    PRIMARY KEY (extended_run_id, config_rank)
);

-- One row per (configuration, fold): its date ranges, sample counts, metrics and model.
CREATE TABLE cv_folds (
    extended_run_id VARCHAR NOT NULL,
    config_rank     INTEGER NOT NULL,
    fold            INTEGER NOT NULL,   -- 1-based
    train_start     DATE    NOT NULL,   -- first and last training decision date
    train_end       DATE    NOT NULL,
    val_start       DATE    NOT NULL,   -- first and last validation decision date
    val_end         DATE    NOT NULL,
    n_train         INTEGER NOT NULL,   -- training decision dates (each holds every ticker)
    n_val           INTEGER NOT NULL,
    n_purged        INTEGER NOT NULL,   -- dates purged because their labels touch the block
    n_embargoed     INTEGER NOT NULL,   -- dates dropped by the embargo after the block
    status          VARCHAR NOT NULL,   -- pending | running | finished | failed
    run_id          VARCHAR,            -- the training run (training_runs, epoch_metrics)
    checkpoint_id   VARCHAR,            -- its best-epoch weights (checkpoints)
    epochs_run      INTEGER,
    best_epoch      INTEGER,
    val_loss        DOUBLE,             -- at the best (lowest validation loss) epoch
    val_accuracy    DOUBLE,
    reason          VARCHAR,
    PRIMARY KEY (extended_run_id, config_rank, fold)
);

-- What `hptune analyze` selected, by which rule, from which study and extended run.
CREATE TABLE selections (
    selection_id     VARCHAR PRIMARY KEY,
    selected_at      TIMESTAMP NOT NULL,
    rule             VARCHAR NOT NULL,
    study_name       VARCHAR NOT NULL,
    extended_run_id  VARCHAR NOT NULL,
    config_rank      INTEGER NOT NULL,
    trial_number     INTEGER NOT NULL,
    dataset_id       VARCHAR NOT NULL,
    config_json      VARCHAR NOT NULL,
    best_config_json VARCHAR NOT NULL,  -- best_config.json, byte for byte
    hptune_version   VARCHAR NOT NULL
);
