-- The enter/exit history lists each change once (issue 17). Over a shared
-- store every api node evaluates every profile change and recorded what it
-- evaluated, so a change was listed once per node. Each recorded change of
-- a (segment, profile) now carries its version, the number of changes
-- recorded for that pair before it plus one, unique per pair: a node
-- recording a change another node already recorded (the same version)
-- writes nothing (AppendSegmentEvents, ON CONFLICT DO NOTHING), and an
-- event of the kind last recorded is no change at all.
--
-- Existing duplicates go first: an event of the same kind as the one
-- recorded before it for the same pair changed nothing.
DELETE FROM segment_events e
 USING (SELECT id, kind, lag(kind) OVER (PARTITION BY segment_id, profile_id ORDER BY id) AS prev
          FROM segment_events) d
 WHERE e.id = d.id AND d.prev = d.kind;

ALTER TABLE segment_events ADD COLUMN version BIGINT;
UPDATE segment_events e SET version = d.n
  FROM (SELECT id, row_number() OVER (PARTITION BY segment_id, profile_id ORDER BY id) AS n FROM segment_events) d
 WHERE e.id = d.id;
ALTER TABLE segment_events ALTER COLUMN version SET NOT NULL;
CREATE UNIQUE INDEX segment_events_change ON segment_events (segment_id, profile_id, version);

-- The webhooks' cursor in the history (segment.Outbox): the id up to which
-- the jobs owner has sent it.
CREATE TABLE segment_outbox (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL
);
