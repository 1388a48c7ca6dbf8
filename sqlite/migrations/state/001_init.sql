-- Derived state: everything here is rebuilt by replaying the event log.
CREATE TABLE profiles (
    id         TEXT PRIMARY KEY,
    doc        BLOB    NOT NULL, -- the profile as JSON
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The identity graph: which profile owns each typed identifier.
CREATE TABLE identities (
    type       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (type, value)
) WITHOUT ROWID;
CREATE INDEX identities_profile ON identities (profile_id);

-- Identifiers a merge rule kept off a profile whose events carry them; they
-- tie that profile's history to whoever holds them, for re-ordering.
CREATE TABLE refused (
    type       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    PRIMARY KEY (type, value, profile_id)
) WITHOUT ROWID;
CREATE INDEX refused_profile ON refused (profile_id);

-- Which events landed on which profile, newest first by event time.
CREATE TABLE profile_events (
    profile_id TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    message_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (profile_id, ts, message_id)
) WITHOUT ROWID;

-- A merged-away or re-numbered profile id points at its survivor.
CREATE TABLE aliases (
    old_id TEXT PRIMARY KEY,
    new_id TEXT NOT NULL
) WITHOUT ROWID;

-- The merge journal.
CREATE TABLE merges (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    into_id    TEXT    NOT NULL,
    from_id    TEXT    NOT NULL DEFAULT '',
    id_type    TEXT    NOT NULL DEFAULT '',
    id_value   TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',
    event_seq  INTEGER NOT NULL DEFAULT 0,
    reason     TEXT    NOT NULL DEFAULT '',
    at         INTEGER NOT NULL
);
CREATE INDEX merges_into ON merges (into_id);
CREATE INDEX merges_from ON merges (from_id);

CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
) WITHOUT ROWID;
