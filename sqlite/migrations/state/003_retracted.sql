-- Events undone by a retract event (an undone record-linkage merge): they
-- stay in the log, and every replay skips them.
CREATE TABLE retracted (
    message_id TEXT PRIMARY KEY
) WITHOUT ROWID;
