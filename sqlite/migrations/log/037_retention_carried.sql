-- The carried-forward events a retention pass appended (sqlite/compact.go),
-- with the live profile each is listed on, from the log's transaction that
-- appends them until the state has listed them: kept in the log, beside
-- the run, instead of in the run's pending document, whose size grew with
-- the profiles of the expired period.
CREATE TABLE retention_carried (
    seq        INTEGER PRIMARY KEY,
    run        INTEGER NOT NULL,
    message_id TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    ts         INTEGER NOT NULL
);
CREATE INDEX retention_carried_run ON retention_carried (run);

-- Filled only in a retention pass's scratch store, which holds the expired
-- events and nothing else: each message id's rank among them in byte
-- order, the name an expired message takes (profile.expiredNames).
CREATE TABLE message_ranks (
    message_id TEXT    PRIMARY KEY,
    rank       INTEGER NOT NULL
) WITHOUT ROWID;
