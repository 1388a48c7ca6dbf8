-- The events a retention pass expires (sqlite/compact.go), from the
-- pass's first state transaction until its state part is done: the state
-- part deletes what they alone made with a few set-wise statements
-- instead of statements per event, and the pass does not hold the list in
-- memory. Rows outlive a pass only when the process dies in it; the next
-- start finishes the pass from them, or drops them when the log's part
-- never committed.
CREATE TABLE retention_expired (
    seq        INTEGER PRIMARY KEY,
    message_id TEXT    NOT NULL,
    tomb       TEXT    NOT NULL
);
CREATE INDEX retention_expired_message ON retention_expired (message_id);
