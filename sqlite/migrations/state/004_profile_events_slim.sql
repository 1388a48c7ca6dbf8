-- profile_events is written for every event the processor applies, so its
-- row size is paid on the hot path: the message id (up to 36 bytes of a
-- UUID) leaves the key, and ties in event time are broken by log position,
-- which is all that listing newest first needs.
CREATE TABLE profile_events_new (
    profile_id TEXT    NOT NULL,
    ts         INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (profile_id, ts, seq)
) WITHOUT ROWID;
INSERT INTO profile_events_new (profile_id, ts, seq) SELECT profile_id, ts, seq FROM profile_events;
DROP TABLE profile_events;
ALTER TABLE profile_events_new RENAME TO profile_events;
