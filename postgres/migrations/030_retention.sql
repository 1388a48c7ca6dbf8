-- Event retention (profile.Processor.Compact) and the retention runs.
-- retention_runs: what each run (events, quarantine) deleted, for the
-- status API and the audit; a new row moves the content version.
CREATE TABLE retention_runs (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    before  BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    doc     BYTEA  NOT NULL -- portrait.RetentionRun as JSON
);
-- Derived state: carried-forward events the state already held when a
-- compaction appended them; the processor skips them, a rebuild (which
-- empties this table) applies them.
CREATE TABLE compacted (
    message_id TEXT COLLATE "C" PRIMARY KEY
);
