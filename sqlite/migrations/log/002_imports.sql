-- Bulk imports (portrait import, POST /v1/imports).

-- One row per import of a file's content into a source; the summary is the
-- importer's JSON (counts, reasons, per-field statistics). Re-importing the
-- same file updates the same row.
CREATE TABLE imports (
    id         TEXT    PRIMARY KEY,
    source     TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    summary    BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX imports_source ON imports (source);

-- Imported rows that fail validation are quarantined under the message id
-- they would have had (import_key in the raw record). Keying them makes
-- re-importing a file, or resuming an interrupted import, leave the
-- quarantine as it is, exactly as the message id does for the events; the
-- trigger does it inside the log's own append transaction, so a crash
-- cannot separate a quarantined row from its key.
CREATE TABLE quarantine_keys (
    key           TEXT    PRIMARY KEY,
    quarantine_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER quarantine_import_dedupe BEFORE INSERT ON quarantine
WHEN substr(CAST(NEW.raw AS TEXT), 1, 15) = '{"import_key":"'
 AND EXISTS (SELECT 1 FROM quarantine_keys WHERE key = json_extract(CAST(NEW.raw AS TEXT), '$.import_key'))
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER quarantine_import_key AFTER INSERT ON quarantine
WHEN substr(CAST(NEW.raw AS TEXT), 1, 15) = '{"import_key":"'
BEGIN
    INSERT OR IGNORE INTO quarantine_keys (key, quarantine_id)
    VALUES (json_extract(CAST(NEW.raw AS TEXT), '$.import_key'), NEW.id);
END;
