-- Erasure (erasure/, sqlite/erase.go). An erased event's row stays as a
-- tombstone (type and source '$erased', no payload, a hashed message id), so
-- sequence numbers are never reused; readers of the log skip it.

-- The receipts, kept for the auditor: counts and hashes, never values.
CREATE TABLE erasures (
    id         TEXT    PRIMARY KEY,
    profile_id TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    receipt    BLOB    NOT NULL
) WITHOUT ROWID;

-- Identifiers of erased people, by SHA-256 of type and value: events that
-- carry one are dropped at ingest (and counted) until it is unsuppressed.
CREATE TABLE suppressed (
    hash       TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL,
    erasure_id TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    dropped    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
