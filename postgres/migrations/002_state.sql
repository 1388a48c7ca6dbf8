-- Derived state: everything here is rebuilt by replaying the event log.
-- Profile ids and identifiers are COLLATE "C" (byte order), whatever the
-- database's collation: lists ordered by them must come out as the
-- embedded store orders them (storetest RunSameAnswers), and byte order is
-- also the cheapest to compare.
-- Tables keyed by profile are partitioned by a hash of the profile id, so
-- that Citus can distribute (and co-locate) them by the same key.
CREATE TABLE profiles (
    id         TEXT COLLATE "C" NOT NULL,
    doc        BYTEA  NOT NULL, -- profile/doc's encoding
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY HASH (id);

CREATE TABLE profile_events (
    profile_id TEXT COLLATE "C" NOT NULL,
    ts         BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (profile_id, ts, seq)
) PARTITION BY HASH (profile_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE profiles_p%s PARTITION OF profiles FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE profile_events_p%s PARTITION OF profile_events FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

-- The identity graph: which profile owns each typed identifier, with the
-- key of the event that attached it.
CREATE TABLE identities (
    type       TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL,
    at_us      BIGINT NOT NULL DEFAULT 0,
    at_msg     TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (type, value)
);
CREATE INDEX identities_profile ON identities (profile_id);

CREATE TABLE refused (
    type       TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (type, value, profile_id)
);
CREATE INDEX refused_profile ON refused (profile_id);

CREATE TABLE aliases (
    old_id TEXT COLLATE "C" PRIMARY KEY,
    new_id TEXT COLLATE "C" NOT NULL
);

CREATE TABLE merges (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    into_id    TEXT COLLATE "C" NOT NULL,
    from_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    id_type    TEXT COLLATE "C" NOT NULL DEFAULT '',
    id_value   TEXT COLLATE "C" NOT NULL DEFAULT '',
    message_id TEXT   NOT NULL DEFAULT '',
    event_seq  BIGINT NOT NULL DEFAULT 0,
    reason     TEXT   NOT NULL DEFAULT '',
    at         BIGINT NOT NULL
);
CREATE INDEX merges_into ON merges (into_id);
CREATE INDEX merges_from ON merges (from_id);

CREATE TABLE checkpoints (
    name       TEXT   PRIMARY KEY,
    seq        BIGINT NOT NULL,
    message_id TEXT   NOT NULL DEFAULT ''
);

CREATE TABLE trait_issues (
    message_id TEXT   NOT NULL,
    trait      TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL,
    value      TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (message_id, trait)
);
CREATE INDEX trait_issues_source ON trait_issues (source, trait);
CREATE INDEX trait_issues_profile ON trait_issues (profile_id, at);

CREATE TABLE retracted (
    message_id TEXT PRIMARY KEY
);

CREATE TABLE splits (
    message_id TEXT PRIMARY KEY,
    bridge     TEXT NOT NULL,
    via_type   TEXT COLLATE "C" NOT NULL,
    via_value  TEXT COLLATE "C" NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    side_a     TEXT NOT NULL DEFAULT '[]',
    side_b     TEXT NOT NULL DEFAULT '[]'
);

CREATE TABLE account_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    body BYTEA  NOT NULL
);
