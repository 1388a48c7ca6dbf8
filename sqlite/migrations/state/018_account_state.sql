-- The account follower's checkpoint (account.Model.Snapshot): derived
-- state like the profiles, one row, emptied by a rebuild (ResetState).
CREATE TABLE account_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL, -- the last event in it
    body BLOB    NOT NULL  -- gob-encoded model
);
