-- Scheduled segment deliveries (file drop, webhook, NATS subject) and the
-- record of every delivery. Configuration and history, like segments: they
-- live beside the log, no replay reproduces them.
CREATE TABLE segment_deliveries (
    id   TEXT PRIMARY KEY,
    body BLOB NOT NULL -- the delivery as JSON
);

CREATE TABLE segment_delivery_runs (
    id          INTEGER PRIMARY KEY,
    delivery_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    body        BLOB    NOT NULL -- the run as JSON
);
CREATE INDEX segment_delivery_runs_delivery ON segment_delivery_runs (delivery_id, id);
