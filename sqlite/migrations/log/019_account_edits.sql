-- Changes made to accounts through the API and imports (account/): who
-- created, verified or corrected what, and when. Accounts are derived from
-- the event log plus these edits, replayed in id order after the events.
CREATE TABLE account_edits (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL, -- unix microseconds
    by      TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    account TEXT    NOT NULL,
    body    TEXT    NOT NULL  -- the edit, JSON
);
CREATE INDEX account_edits_account ON account_edits (account, id);
