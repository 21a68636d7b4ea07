-- Training runs: one row per model trained by any stage, with its lineage.
CREATE TABLE training_runs (
    run_id            VARCHAR PRIMARY KEY,
    stage             VARCHAR NOT NULL,   -- train (final training); tune and extend add theirs
    dataset_id        VARCHAR NOT NULL,
    model_type        VARCHAR NOT NULL,   -- mlp | lstm | gru
    config_json       VARCHAR NOT NULL,   -- the hyperparameters, as validated (JSON)
    config_source     VARCHAR NOT NULL,   -- where the configuration came from (file and sha256, selection)
    seed              BIGINT  NOT NULL,
    device            VARCHAR NOT NULL,
    tickers_json      VARCHAR NOT NULL,   -- the model's tickers, in order (JSON list)
    train_start       DATE    NOT NULL,   -- first and last decision date of the training samples
    train_end         DATE    NOT NULL,
    val_start         DATE    NOT NULL,   -- first and last decision date of the validation samples
    val_end           DATE    NOT NULL,
    holdout_start     DATE,               -- first date reserved for the backtest, never trained on
    status            VARCHAR NOT NULL,   -- running | finished | failed
    reason            VARCHAR,            -- why it failed
    epochs_run        INTEGER,
    best_epoch        INTEGER,
    best_val_loss     DOUBLE,
    best_val_accuracy DOUBLE,
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    hptune_version    VARCHAR NOT NULL
);

-- Per-epoch metrics, written as training goes.
CREATE TABLE epoch_metrics (
    run_id       VARCHAR NOT NULL,
    epoch        INTEGER NOT NULL,        -- 1-based
    train_loss   DOUBLE  NOT NULL,
    val_loss     DOUBLE  NOT NULL,
    val_accuracy DOUBLE  NOT NULL,
    seconds      DOUBLE  NOT NULL,
    PRIMARY KEY (run_id, epoch)
);

-- Weights files (safetensors) and what they hold; loading checks sha256 and size.
CREATE TABLE checkpoints (
    checkpoint_id VARCHAR PRIMARY KEY,    -- run_id/role
    run_id        VARCHAR NOT NULL,
    role          VARCHAR NOT NULL,       -- best (lowest validation loss) | final (last epoch)
    epoch         INTEGER NOT NULL,
    path          VARCHAR NOT NULL,       -- absolute path of the file
    sha256        VARCHAR NOT NULL,
    size_bytes    BIGINT  NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
