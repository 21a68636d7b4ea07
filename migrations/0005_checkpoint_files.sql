-- The bytes of every checkpoint file, by content: the database can write any checkpoint again.
CREATE TABLE checkpoint_files (
    sha256 VARCHAR PRIMARY KEY,
    bytes  BLOB NOT NULL
);
