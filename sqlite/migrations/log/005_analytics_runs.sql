-- Analytics runs: what ran, with which parameters, what it measured, how
-- long it took and how many profiles it wrote back to.
CREATE TABLE analytics_runs (
    id          TEXT PRIMARY KEY,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    doc         BLOB    NOT NULL, -- the run as JSON
    started_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX analytics_runs_kind ON analytics_runs (kind, started_at);
