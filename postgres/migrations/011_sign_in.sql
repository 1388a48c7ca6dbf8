-- The sign-in throttle's failure counts and the console's one-time sign-in
-- codes (http/session.go, portrait.SignInGuard), shared by every api node.
-- Clients and codes are SHA-256 hashes.
CREATE TABLE sign_in_failures (
    client   TEXT   PRIMARY KEY,
    n        BIGINT NOT NULL,
    first_at BIGINT NOT NULL
);
CREATE TABLE sign_in_codes (
    code_hash  TEXT   PRIMARY KEY,
    key_id     BIGINT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
