-- The change feed (postgres/changes.go): the profiles each state
-- transaction wrote or deleted, numbered in commit order under an advisory
-- lock, pruned after a while; profile_changes_floor is the last seq pruned.
CREATE TABLE profile_changes (
    seq        BIGINT  PRIMARY KEY,
    profile_id TEXT    NOT NULL,
    deleted    BOOLEAN NOT NULL,
    at         BIGINT  NOT NULL
);
CREATE INDEX profile_changes_at ON profile_changes (at);

CREATE TABLE profile_changes_floor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO profile_changes_floor (id, seq) VALUES (1, 0);
