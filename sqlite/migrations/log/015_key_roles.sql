-- Principals (issue 15): API tokens get a role, the scopes of a custom
-- role, a clearance level and an expiry. Secrets are now stored as salted
-- bcrypt hashes, found by a short public prefix of the secret; rows from
-- before keep their SHA-256 (prefix NULL) until their first successful use
-- re-hashes them. Existing admin tokens read as role admin, clearance secret.
ALTER TABLE keys ADD COLUMN role       TEXT    NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN scopes     TEXT    NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN clearance  TEXT    NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN prefix     TEXT;
UPDATE keys SET role = 'admin', clearance = 'secret' WHERE kind = 'admin';
CREATE INDEX keys_prefix ON keys (prefix);

-- Classification levels (密级) set through the API, over the trait schema's
-- and the built-in defaults; who changed them is in the audit log.
CREATE TABLE classifications (
    kind       TEXT    NOT NULL CHECK (kind IN ('trait', 'identifier')),
    name       TEXT    NOT NULL,
    level      TEXT    NOT NULL CHECK (level IN ('public', 'internal', 'confidential', 'secret')),
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
