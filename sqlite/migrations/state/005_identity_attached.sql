-- When each identifier was attached to its profile (the event key, time and
-- message id, of the event that attached it in canonical order). A late
-- event that carries only an identifier attached before it changes no
-- identity decision, so the processor applies it without replaying the
-- profile's history. Rows from before this column say 0: unknown, and such
-- events are replayed as before.
ALTER TABLE identities ADD COLUMN at_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN at_msg TEXT NOT NULL DEFAULT '';
