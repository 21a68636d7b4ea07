-- Where each run came from (`src/provenance.rs`): one row per hptune process that wrote one, and
-- a pointer to it from every study, training run, extended run, selection and backtest. Rows
-- written before this migration have none, and read as unknown.
CREATE TABLE provenance (
    provenance_id  VARCHAR PRIMARY KEY,  -- process-YYYYmmdd-HHMMSS.mmm-PID
    recorded_at    TIMESTAMP NOT NULL,
    hptune_version VARCHAR NOT NULL,
    git_commit     VARCHAR NOT NULL,     -- the build's commit, '-dirty' after it, or 'unknown'
    command_line   VARCHAR NOT NULL,     -- passwords in storage URLs replaced by ***
    host           VARCHAR NOT NULL,
    cpu_model      VARCHAR NOT NULL,
    kernel_path    VARCHAR NOT NULL,     -- avx512 | avx2 | baseline
    threads        INTEGER NOT NULL,     -- rayon threads
    device         VARCHAR NOT NULL      -- cpu | cuda
);
ALTER TABLE studies ADD COLUMN provenance_id VARCHAR;
ALTER TABLE training_runs ADD COLUMN provenance_id VARCHAR;
ALTER TABLE extended_runs ADD COLUMN provenance_id VARCHAR;
ALTER TABLE selections ADD COLUMN provenance_id VARCHAR;
ALTER TABLE backtests ADD COLUMN provenance_id VARCHAR;
