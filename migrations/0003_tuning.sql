-- Tuning studies: one row per study, with everything needed to continue it.
CREATE TABLE studies (
    study_name     VARCHAR PRIMARY KEY,
    direction      VARCHAR NOT NULL,   -- maximize (validation accuracy)
    dataset_id     VARCHAR NOT NULL,
    space_toml     VARCHAR NOT NULL,   -- the search space, as TOML
    n_trials       INTEGER NOT NULL,   -- the budget the phases are split over
    plan_random    INTEGER NOT NULL,   -- trials per phase
    plan_bayesian  INTEGER NOT NULL,
    plan_finetune  INTEGER NOT NULL,
    seed           BIGINT  NOT NULL,
    epochs         INTEGER NOT NULL,   -- most epochs a trial trains
    holdout        DOUBLE  NOT NULL,   -- share of the latest dates no trial sees
    pruning        BOOLEAN NOT NULL,
    sampler_json   VARCHAR NOT NULL,   -- sampler and pruner settings
    hptune_version VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

-- Trials: one row per trial; the training itself is a training_runs row (run_id) with its
-- per-epoch metrics and checkpoint.
CREATE TABLE trials (
    study_name   VARCHAR NOT NULL,
    number       INTEGER NOT NULL,     -- 0-based within the study
    phase        VARCHAR NOT NULL,     -- random | bayesian | finetune
    state        VARCHAR NOT NULL,     -- RUNNING | COMPLETE | PRUNED | FAIL
    value        DOUBLE,               -- validation accuracy at the best (lowest loss) epoch
    val_loss     DOUBLE,
    run_id       VARCHAR,
    worker       VARCHAR NOT NULL,     -- host:pid of the process that ran it
    pruned_epoch INTEGER,
    reason       VARCHAR,              -- why it failed or was pruned
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    duration_s   DOUBLE,
    heartbeat_at TIMESTAMP NOT NULL,
    PRIMARY KEY (study_name, number)
);

-- Trial parameters, one row each: value as JSON text, and as a number where it is one.
CREATE TABLE trial_params (
    study_name VARCHAR NOT NULL,
    number     INTEGER NOT NULL,
    name       VARCHAR NOT NULL,
    value_json VARCHAR NOT NULL,
    value_num  DOUBLE,
    PRIMARY KEY (study_name, number, name)
);
