-- Identity merges a person undid (profile.Split): derived from split events
-- in the log, kept here so that every replay refuses the merge again.
-- side_a and side_b hold the identifiers of the two sides, as JSON arrays
-- of {"type","value"}, once the replay has met the merge.
CREATE TABLE splits (
    message_id TEXT PRIMARY KEY,
    bridge     TEXT NOT NULL,
    via_type   TEXT NOT NULL,
    via_value  TEXT NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    side_a     TEXT NOT NULL DEFAULT '[]',
    side_b     TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
