-- Combinatorial purged cross-validation (`extend --scheme cpcv`): the groups each split tests,
-- and the out-of-sample paths rebuilt from the splits. DuckDB cannot change a constraint, so
-- extended_runs is rebuilt with its rows.

ALTER TABLE extended_runs RENAME TO extended_runs_0014;
CREATE TABLE extended_runs (
    extended_run_id VARCHAR PRIMARY KEY,
    study_name      VARCHAR NOT NULL,
    dataset_id      VARCHAR NOT NULL,
    scheme          VARCHAR NOT NULL CHECK (scheme IN ('walk-forward', 'purged-kfold', 'cpcv')),
    n_folds         INTEGER NOT NULL,   -- folds; groups with cpcv
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
    worker          VARCHAR,
    heartbeat_at    TIMESTAMP,
    test_groups     INTEGER             -- cpcv: groups each split tests (k); NULL otherwise
);
INSERT INTO extended_runs SELECT *, NULL FROM extended_runs_0014;
DROP TABLE extended_runs_0014;

-- cpcv: the 1-based groups a split (fold) validates; NULL for the other schemes.
ALTER TABLE cv_folds ADD COLUMN test_groups INTEGER[];

-- cpcv: path `path` takes group `test_group` (its first and last decision date) from the
-- predictions of split `fold`; every configuration of the run shares the paths.
CREATE TABLE cpcv_paths (
    extended_run_id VARCHAR NOT NULL,
    path            INTEGER NOT NULL,   -- 1 .. C(N-1, k-1)
    test_group      INTEGER NOT NULL,   -- 1 .. N
    fold            INTEGER NOT NULL,
    group_start     DATE    NOT NULL,
    group_end       DATE    NOT NULL,
    PRIMARY KEY (extended_run_id, path, test_group)
);
