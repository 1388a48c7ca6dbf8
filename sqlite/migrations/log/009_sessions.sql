-- Console sessions (http/session.go). Only a hash of the cookie value is
-- kept; the CSRF token is derived from the cookie value, so it needs no
-- column. A session dies with its key (revocation deletes the key row).
CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    key_id     INTEGER NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_key ON sessions (key_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
