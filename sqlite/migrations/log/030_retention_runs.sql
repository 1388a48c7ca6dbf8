-- Retention runs (events and quarantine): what each deleted, for the
-- status API and the audit; a new row moves the content version, so an
-- answer cache does not serve what a run deleted.
CREATE TABLE retention_runs (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    before  INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    doc     BLOB    NOT NULL -- portrait.RetentionRun as JSON
);
