-- Tag definitions, every version kept: a rule's history is configuration,
-- not derivable from events, so it lives beside the log.
CREATE TABLE tag_definitions (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    body       BLOB    NOT NULL, -- the definition as JSON
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

-- Computed-trait definitions (the latest of each; deleted rows removed).
CREATE TABLE trait_definitions (
    name       TEXT    PRIMARY KEY,
    body       BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Incoming traits typed on first sight, with their annotations.
CREATE TABLE trait_schema (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL
);

-- RFM quintile boundaries, one row per computation. They are kept here,
-- not in the derived state, so that a rebuild scores against the same
-- boundaries the live run used.
CREATE TABLE rfm_boundaries (
    id          INTEGER PRIMARY KEY,
    computed_at INTEGER NOT NULL,
    body        BLOB    NOT NULL
);
