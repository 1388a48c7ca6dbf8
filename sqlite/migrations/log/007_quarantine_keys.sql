-- Import rows are deduplicated in the quarantine by a key the importer
-- passes explicitly (portrait.Rejected.Key), no longer by triggers reading
-- the raw bytes: those bytes are whatever a client sent, and a body that
-- merely looked like an import record could fail, or swallow, another's.
DROP TRIGGER IF EXISTS quarantine_import_dedupe;
DROP TRIGGER IF EXISTS quarantine_import_key;
