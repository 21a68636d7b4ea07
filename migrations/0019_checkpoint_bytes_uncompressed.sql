-- Checkpoint bytes stored without zstd. DuckDB 1.2 compresses a block of BLOBs as one zstd stream
-- and decompresses it from the start to fetch any one of them: a lookup cost up to 0.2 s in a file
-- of 1,000 checkpoints, and an export of a study's 1,000 checkpoints 70 s. Writers now open with
-- zstd disabled (store::conn); this copy rewrites the bytes written before.
CREATE TABLE checkpoint_files_uncompressed (
    sha256 VARCHAR PRIMARY KEY,
    bytes  BLOB NOT NULL
);
INSERT INTO checkpoint_files_uncompressed SELECT sha256, bytes FROM checkpoint_files;
DROP TABLE checkpoint_files;
ALTER TABLE checkpoint_files_uncompressed RENAME TO checkpoint_files;
