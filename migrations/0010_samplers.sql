-- The sampler of a study's model-based phases (tpe | gp | auto, chosen with --sampler) and, per
-- trial, the one that drew its parameters (halton | tpe | gp). Studies before this migration used
-- TPE; their trials are marked halton in the random phase and tpe after it (the first trials of a
-- Bayesian phase that found fewer than two finished trials were in fact Halton points: the record
-- did not say). DuckDB cannot add a constraint to a table, so both tables are rebuilt with their rows.

ALTER TABLE studies RENAME TO studies_0009;
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
    created_at     TIMESTAMP NOT NULL,
    sampler        VARCHAR NOT NULL CHECK (sampler IN ('tpe', 'gp', 'auto'))
);
INSERT INTO studies SELECT *, 'tpe' FROM studies_0009;
DROP TABLE studies_0009;

ALTER TABLE trials RENAME TO trials_0009;
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
    sampler      VARCHAR NOT NULL CHECK (sampler IN ('halton', 'tpe', 'gp')),
    PRIMARY KEY (study_name, number)
);
INSERT INTO trials SELECT *, CASE WHEN phase = 'random' THEN 'halton' ELSE 'tpe' END FROM trials_0009;
DROP TABLE trials_0009;
