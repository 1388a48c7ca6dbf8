-- SourceActivity's running totals of the log per source (activity.go). The
-- overview asks on every visit, and a grouped pass over the whole log grows
-- with it; the log is append-only and its seq order is its commit order, so
-- the totals are brought forward from the seq they were counted up to. One
-- set for every node, advanced under an advisory lock.
CREATE TABLE source_activity (
    source     TEXT   PRIMARY KEY,
    events     BIGINT NOT NULL,
    last_event BIGINT NOT NULL -- latest received_at (unix microseconds)
);
CREATE TABLE source_activity_mark (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL -- events up to here are counted above
);
