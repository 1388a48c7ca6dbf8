-- The event log: the source of truth. Append-only; message_id makes retries
-- idempotent.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    message_id  TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    ts          INTEGER NOT NULL, -- event time, unix microseconds
    received_at INTEGER NOT NULL,
    body        BLOB    NOT NULL  -- the event as JSON
);

-- Everything rejected, whole, with its reason: nothing is lost silently.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    raw         BLOB    NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX quarantine_source ON quarantine (source, id);

CREATE TABLE keys (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('write', 'admin')),
    name       TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    priority   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
