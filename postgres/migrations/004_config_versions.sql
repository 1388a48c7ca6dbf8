-- Configuration versions (postgres/definitions.go): one counter per kind of
-- definition (tags, traits, segments, classifications, ...), raised by the
-- node that changed one, so the other nodes, which hold definitions in
-- memory, know to read that kind again.
CREATE TABLE config_versions (
    kind    TEXT   PRIMARY KEY,
    version BIGINT NOT NULL
);
