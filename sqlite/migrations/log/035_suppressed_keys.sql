-- Keyed suppression (issue 15, docs/erasure.md): with a data key the hash
-- is HMAC-SHA-256 under a key derived from the data key named in key_id
-- ('' = the unkeyed SHA-256 of a store without a data key), and sealed
-- holds the inner SHA-256 sealed under that data key, so that a rotation
-- can re-key the row. Existing rows stay unkeyed until a store with a key
-- opens (RekeySuppressions upgrades them in place).
ALTER TABLE suppressed ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE suppressed ADD COLUMN sealed TEXT NOT NULL DEFAULT '';
