-- The event log and what lives beside it (configuration and history that no
-- replay reproduces). Times are unix microseconds (BIGINT) as in the embedded
-- store, so both keep the same values.

-- The event log: the source of truth. Append-only; message_id makes retries
-- idempotent. seq is handed out under an advisory lock held to commit (see
-- db.go), so sequence numbers become visible in order.
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY,
    message_id  TEXT   NOT NULL UNIQUE,
    type        TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    ts          BIGINT NOT NULL, -- event time
    received_at BIGINT NOT NULL,
    body        BYTEA  NOT NULL  -- the event as JSON
);
CREATE INDEX events_received ON events (received_at);

-- Everything rejected, whole, with its reason: nothing is lost silently.
-- key deduplicates re-imported rows (portrait.Rejected.Key).
CREATE TABLE quarantine (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT   NOT NULL,
    idx         BIGINT NOT NULL,
    reason      TEXT   NOT NULL,
    raw         BYTEA  NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX quarantine_source ON quarantine (source, id);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE quarantine_keys (
    key           TEXT   PRIMARY KEY,
    quarantine_id BIGINT NOT NULL
);

-- API tokens and write keys: salted bcrypt hashes found by a public prefix.
CREATE TABLE keys (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('write', 'admin')),
    name       TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    priority   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    role       TEXT   NOT NULL DEFAULT '',
    scopes     TEXT   NOT NULL DEFAULT '',
    clearance  TEXT   NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL DEFAULT 0,
    prefix     TEXT
);
CREATE INDEX keys_prefix ON keys (prefix);

-- Classification levels (密级) set through the API.
CREATE TABLE classifications (
    kind       TEXT   NOT NULL CHECK (kind IN ('trait', 'identifier')),
    name       TEXT   NOT NULL,
    level      TEXT   NOT NULL CHECK (level IN ('public', 'internal', 'confidential', 'secret')),
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Console sessions: only a hash of the cookie value is kept.
CREATE TABLE sessions (
    id_hash    TEXT   PRIMARY KEY,
    key_id     BIGINT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_key ON sessions (key_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The audit log: append-only and hash-chained (see the embedded store's
-- 016_audit.sql); rules refuse updates and deletes through SQL.
CREATE TABLE audit (
    seq    BIGINT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    target TEXT   NOT NULL DEFAULT '',
    body   TEXT   NOT NULL, -- the record as JSON, exactly as hashed
    prev   TEXT   NOT NULL,
    hash   TEXT   NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_at ON audit (at);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- Bulk imports.
CREATE TABLE imports (
    id         TEXT   PRIMARY KEY,
    source     TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    summary    BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX imports_source ON imports (source);

-- Record linkage.
CREATE TABLE linkage_candidates (
    id       TEXT PRIMARY KEY,
    doc      BYTEA            NOT NULL,
    prob     DOUBLE PRECISION NOT NULL,
    found_at BIGINT           NOT NULL
);
CREATE TABLE linkage_decisions (
    id           TEXT   PRIMARY KEY,
    status       TEXT   NOT NULL CHECK (status IN ('accepted', 'rejected', 'linked')),
    decided_by   TEXT   NOT NULL,
    decided_at   BIGINT NOT NULL,
    link_message TEXT   NOT NULL DEFAULT ''
);
CREATE TABLE linkage_model (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    doc      BYTEA  NOT NULL,
    saved_at BIGINT NOT NULL
);

-- Tags, computed traits, the trait schema, RFM boundaries.
CREATE TABLE tag_definitions (
    name       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    body       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE trait_definitions (
    name       TEXT   PRIMARY KEY,
    body       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE trait_schema (
    name TEXT  PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE rfm_boundaries (
    id          BIGSERIAL PRIMARY KEY,
    computed_at BIGINT NOT NULL,
    body        BYTEA  NOT NULL
);

-- Analytics runs.
CREATE TABLE analytics_runs (
    id         TEXT   PRIMARY KEY,
    kind       TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    doc        BYTEA  NOT NULL,
    started_at BIGINT NOT NULL
);
CREATE INDEX analytics_runs_kind ON analytics_runs (kind, started_at);

-- Segments, their enter/exit history, webhooks, dead letters, deliveries.
CREATE TABLE segments (
    id         TEXT   PRIMARY KEY,
    body       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE segment_events (
    id         BIGSERIAL PRIMARY KEY,
    segment_id TEXT   NOT NULL,
    profile_id TEXT   NOT NULL,
    kind       TEXT   NOT NULL, -- enter | exit
    at         BIGINT NOT NULL
);
CREATE INDEX segment_events_segment ON segment_events (segment_id, id);
CREATE INDEX segment_events_member ON segment_events (segment_id, profile_id, id);
CREATE TABLE segment_webhooks (
    id   TEXT  PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE segment_dead_letters (
    id         BIGSERIAL PRIMARY KEY,
    webhook_id TEXT   NOT NULL,
    body       BYTEA  NOT NULL,
    error      TEXT   NOT NULL,
    attempts   BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE TABLE segment_deliveries (
    id   TEXT  PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE segment_delivery_runs (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    body        BYTEA  NOT NULL
);
CREATE INDEX segment_delivery_runs_delivery ON segment_delivery_runs (delivery_id, id);

-- Erasure receipts and suppressed identifiers.
CREATE TABLE erasures (
    id         TEXT   PRIMARY KEY,
    profile_id TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    receipt    BYTEA  NOT NULL
);
CREATE TABLE suppressed (
    hash       TEXT   PRIMARY KEY,
    type       TEXT   NOT NULL,
    erasure_id TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    dropped    BIGINT NOT NULL DEFAULT 0
);

-- Account edits made through the API and imports.
CREATE TABLE account_edits (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    by      TEXT   NOT NULL,
    kind    TEXT   NOT NULL,
    account TEXT   NOT NULL,
    body    TEXT   NOT NULL
);
CREATE INDEX account_edits_account ON account_edits (account, id);
