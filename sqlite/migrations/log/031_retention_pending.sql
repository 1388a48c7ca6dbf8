-- A retention pass's state part, kept with its run from the log's
-- transaction until the state has it (NULL then): should the process die
-- in between, the next start finishes it (sqlite/compact.go).
ALTER TABLE retention_runs ADD COLUMN pending BLOB;
