-- Segment definitions, webhooks and the enter/exit history. They live beside
-- the log, not in the derived state: definitions are configuration, and the
-- history records what happened when, which no replay can reproduce.
CREATE TABLE segments (
    id         TEXT PRIMARY KEY,
    body       BLOB    NOT NULL, -- the definition as JSON
    updated_at INTEGER NOT NULL
);

CREATE TABLE segment_events (
    id         INTEGER PRIMARY KEY,
    segment_id TEXT    NOT NULL,
    profile_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL, -- enter | exit
    at         INTEGER NOT NULL
);
CREATE INDEX segment_events_segment ON segment_events (segment_id, id);

CREATE TABLE segment_webhooks (
    id   TEXT PRIMARY KEY,
    body BLOB NOT NULL
);

-- Deliveries that failed every attempt, kept whole for inspection and replay.
CREATE TABLE segment_dead_letters (
    id         INTEGER PRIMARY KEY,
    webhook_id TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    error      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL,
    at         INTEGER NOT NULL
);
