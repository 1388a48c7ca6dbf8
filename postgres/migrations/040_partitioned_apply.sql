-- Partitioned application (docs/scaling.md, serve --apply partitioned):
-- each event records the bus partition it came from, so that a node taking
-- a partition over finds what its predecessor appended but did not apply
-- (events of p after p's checkpoint, "profiles/p<p>"). Events appended
-- without the bus (system events, undo requests, imports on one node) have
-- none: the node holding the applier lease applies those ("profiles/direct").
-- The index covers both: min(seq) after a checkpoint is one index probe.
ALTER TABLE events ADD COLUMN partition SMALLINT;
CREATE INDEX events_partition ON events (partition, seq);
