-- The sign-in throttle's failure counts and the console's one-time sign-in
-- codes (http/session.go, portrait.SignInGuard), kept here so that they
-- survive a restart. Clients and codes are SHA-256 hashes.
CREATE TABLE sign_in_failures (
    client   TEXT    PRIMARY KEY,
    n        INTEGER NOT NULL,
    first_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE sign_in_codes (
    code_hash  TEXT    PRIMARY KEY,
    key_id     INTEGER NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
