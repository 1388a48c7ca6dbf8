-- A profile document is kilobytes (an enriched customer's, ten), and in a
-- WITHOUT ROWID table a row is an index entry: SQLite keeps at most about
-- a quarter of a page of it in the B-tree and the rest in an overflow
-- page of its own, so every such profile written cost a whole extra page.
-- In a rowid table a row of up to a page stays in its leaf, rows share
-- pages, and the id is a small unique index beside it.
CREATE TABLE profiles_new (
    id         TEXT    NOT NULL UNIQUE,
    doc        BLOB    NOT NULL, -- the profile as JSON
    updated_at INTEGER NOT NULL
);
INSERT INTO profiles_new (id, doc, updated_at) SELECT id, doc, updated_at FROM profiles ORDER BY id;
DROP TABLE profiles;
ALTER TABLE profiles_new RENAME TO profiles;
