-- Tags (key = value) and notes a person puts on any study, training run (trial, fold, final
-- model), extended run, selection or backtest (`hptune tag`, `hptune note`).
CREATE TABLE tags (
    id        VARCHAR NOT NULL,    -- a run_provenance id
    kind      VARCHAR NOT NULL,    -- its run_provenance kind
    key       VARCHAR NOT NULL,
    value     VARCHAR NOT NULL,
    tagged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id, key)
);

CREATE TABLE notes (
    id         VARCHAR NOT NULL,
    kind       VARCHAR NOT NULL,
    number     INTEGER NOT NULL,   -- 1, 2, ... per id, in the order written
    text       VARCHAR NOT NULL,
    written_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id, number)
);
