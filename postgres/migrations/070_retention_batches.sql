-- Event retention in batches (postgres/compact.go): a run whose expired
-- events are still being made tombstones, a batch a transaction, keeps
-- what they are here (NULL once done), so that a pass stopped between
-- batches is finished by the next start or pass.
ALTER TABLE retention_runs ADD COLUMN pending BYTEA;

-- Filled only in a retention pass's scratch store (in the tests: the
-- server's scratch store is SQLite), which holds the expired events and
-- nothing else: each message id's rank among them in byte order.
CREATE TABLE message_ranks (
    message_id TEXT COLLATE "C" PRIMARY KEY,
    rank       BIGINT NOT NULL
);
