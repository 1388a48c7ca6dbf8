-- Record linkage: the pairs the last run scored (the review band and what it
-- linked), and the decisions people made, which outlive runs.
CREATE TABLE linkage_candidates (
    id       TEXT PRIMARY KEY,
    doc      BLOB    NOT NULL, -- the candidate as JSON
    prob     REAL    NOT NULL,
    found_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE linkage_decisions (
    id           TEXT PRIMARY KEY,
    status       TEXT    NOT NULL CHECK (status IN ('accepted', 'rejected', 'linked')),
    decided_by   TEXT    NOT NULL,
    decided_at   INTEGER NOT NULL,
    link_message TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- The model the first run fitted, reused by later runs.
CREATE TABLE linkage_model (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    doc      BLOB    NOT NULL,
    saved_at INTEGER NOT NULL
);
