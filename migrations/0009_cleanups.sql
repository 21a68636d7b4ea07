-- hptune clean: each cleanup that removed weights, and on each checkpoint the cleanup that removed
-- its file and stored bytes. The checkpoint rows, like every other row of the record, stay.
CREATE TABLE cleanups (
    cleanup_id      VARCHAR PRIMARY KEY,
    cleaned_at      TIMESTAMP NOT NULL,
    keep_top        INTEGER   NOT NULL,
    older_than_days INTEGER,            -- NULL: no age limit was given
    n_checkpoints   INTEGER   NOT NULL, -- checkpoints whose weights went
    n_folders       INTEGER   NOT NULL, -- moved-aside folders and files removed
    disk_bytes      BIGINT    NOT NULL, -- bytes of files removed
    database_bytes  BIGINT    NOT NULL, -- bytes of checkpoint_files removed
    hptune_version  VARCHAR   NOT NULL
);
ALTER TABLE checkpoints ADD COLUMN cleanup_id VARCHAR;
