-- The enter/exit history lists each change once (issue 17; the same as
-- postgres/migrations/065): each recorded change of a (segment, profile)
-- carries its version, unique per pair, and AppendSegmentEvents writes the
-- next version only when the kind differs from the last recorded one
-- (INSERT OR IGNORE). A single node did not record duplicates, but a
-- history moved from a shared store (or written twice at a restart) may
-- hold some: an event of the same kind as the one before it for the same
-- pair changed nothing, and goes.
DELETE FROM segment_events WHERE id IN (
    SELECT id FROM (SELECT id, kind, lag(kind) OVER (PARTITION BY segment_id, profile_id ORDER BY id) AS prev
                      FROM segment_events)
     WHERE prev = kind);

ALTER TABLE segment_events ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
UPDATE segment_events SET version = (
    SELECT n FROM (SELECT id, row_number() OVER (PARTITION BY segment_id, profile_id ORDER BY id) AS n
                     FROM segment_events) d
     WHERE d.id = segment_events.id);
CREATE UNIQUE INDEX segment_events_change ON segment_events (segment_id, profile_id, version);

-- The webhooks' cursor in the history (segment.Outbox).
CREATE TABLE segment_outbox (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
