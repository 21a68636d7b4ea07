-- The finished trials of earlier studies that seed a new study's sampler (`tune --warm-start`):
-- its lineage. They are not trials of the study: they count in no budget and no N.
CREATE TABLE study_seeds (
    study_name    VARCHAR NOT NULL,
    position      INTEGER NOT NULL,   -- 1, 2, ... in the order the sampler reads them
    source_study  VARCHAR NOT NULL,
    source_number INTEGER NOT NULL,
    value         DOUBLE  NOT NULL,
    params_json   VARCHAR NOT NULL,   -- the parameters the new space keeps
    PRIMARY KEY (study_name, position)
);
