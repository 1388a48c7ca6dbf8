-- Fencing the applier (docs/scaling.md): the highest term (the applier
-- lease's revision) that has written the derived state, per fence (the
-- lease bucket's incarnation, so that a bus recreated with revisions
-- starting again at 1 does not find itself fenced out). Every state
-- transaction of an applier raises its fence's row to its term, or is
-- refused if the row holds a later one; the row lock taken at the start of
-- the transaction also makes a new term's claim wait for a commit in
-- flight. Not derived state: a rebuild keeps it.
CREATE TABLE applier_terms (
    fence TEXT   PRIMARY KEY,
    term  BIGINT NOT NULL
);
