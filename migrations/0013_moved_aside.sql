-- Every output this database's stages moved aside (`NAME.YYYYmmdd-HHMMSS`): where it was and
-- where it went, as absolute paths. `hptune clean` sweeps only these, never a folder it merely
-- finds (a colleague's export beside an imported model, an older database's outputs).
CREATE TABLE moved_aside (
    path     VARCHAR PRIMARY KEY,
    original VARCHAR NOT NULL,
    moved_at TIMESTAMP NOT NULL
);
