-- The audit log (issue 15): append-only and hash-chained. Each record's
-- hash covers the previous record's hash and its own content, so an edit,
-- a deletion or a reordering breaks the chain (portrait audit verify). The
-- triggers refuse updates and deletes through SQL as well; someone with
-- the file can drop them, which the chain then reveals.
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL DEFAULT '',
    body   TEXT    NOT NULL, -- the record as JSON, exactly as hashed
    prev   TEXT    NOT NULL,
    hash   TEXT    NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_at ON audit (at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
