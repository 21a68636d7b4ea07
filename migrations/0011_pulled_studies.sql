-- Studies copied from a study server by `hptune pull`: the server (its URL without a password)
-- and when they were pulled. A pulled study grows by pulling again, never by a local `hptune
-- tune`, so that its trial numbers stay the server's.
CREATE TABLE pulled_studies (
    study_name     VARCHAR PRIMARY KEY,
    storage        VARCHAR NOT NULL,
    first_pulled_at TIMESTAMP NOT NULL,
    last_pulled_at TIMESTAMP NOT NULL
);
