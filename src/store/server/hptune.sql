-- hptune's own tables in a study server's database, beside Optuna's (Optuna ignores them):
-- datasets by content hash (the long CSV, so that a worker on a fresh machine imports it), every
-- epoch of every trial, and checkpoints with their bytes by sha256.
CREATE TABLE IF NOT EXISTS hptune_datasets (dataset_id text PRIMARY KEY, name text NOT NULL, source text NOT NULL,
    long_csv text NOT NULL);
CREATE TABLE IF NOT EXISTS hptune_epochs (trial_id integer NOT NULL REFERENCES trials (trial_id), epoch integer NOT NULL,
    train_loss double precision NOT NULL, val_loss double precision NOT NULL, val_accuracy double precision NOT NULL,
    seconds double precision NOT NULL, PRIMARY KEY (trial_id, epoch));
CREATE TABLE IF NOT EXISTS hptune_checkpoint_files (sha256 text PRIMARY KEY, bytes bytea NOT NULL);
CREATE TABLE IF NOT EXISTS hptune_checkpoints (checkpoint_id text PRIMARY KEY,
    trial_id integer NOT NULL REFERENCES trials (trial_id), role text NOT NULL, epoch integer NOT NULL, path text NOT NULL,
    sha256 text NOT NULL REFERENCES hptune_checkpoint_files (sha256), size_bytes bigint NOT NULL);
