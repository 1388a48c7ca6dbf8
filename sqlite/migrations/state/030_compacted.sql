-- Carried-forward events (portrait.EventRetained) a retention compaction
-- wrote while the state already held what they carry: the processor skips
-- them when it reaches them in the log; a rebuild (which empties this
-- table) applies them.
CREATE TABLE compacted (
    message_id TEXT PRIMARY KEY
) WITHOUT ROWID;
