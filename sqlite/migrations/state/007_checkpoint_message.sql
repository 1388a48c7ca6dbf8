-- A checkpoint names the last event applied by its messageId as well as its
-- sequence number: if the log loses its tail and gives the numbers to new
-- events, the state is known to be built from other events (see openState).
ALTER TABLE checkpoints ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
