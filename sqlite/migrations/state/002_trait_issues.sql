-- Trait values the standardizers refused (an invalid email, a phone that is
-- not a number): the trait is left unset, and the problem is kept here for
-- the data-quality report. Keyed by event and trait, so a replay records
-- each problem once.
CREATE TABLE trait_issues (
    message_id TEXT    NOT NULL,
    trait      TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    profile_id TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    at         INTEGER NOT NULL, -- event time, unix microseconds
    PRIMARY KEY (message_id, trait)
) WITHOUT ROWID;
CREATE INDEX trait_issues_source ON trait_issues (source, trait);
