-- The retractions and splits numbered (profile.DecisionsVersioned): every
-- statement that writes either raises the 'state:decisions' version in
-- config_versions, in the writer's own transaction, whoever the writer is
-- (an applier, an erasure); ResetState, which truncates them, raises it
-- itself (a TRUNCATE trigger would fire on the tests' truncation of every
-- table, config_versions among them, and leave a version behind). A partitioned
-- applier holds them between batches and reads them again only when the
-- version moved; it read both tables in full before every batch (issue 17).
CREATE FUNCTION bump_decisions_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO config_versions (kind, version) VALUES ('state:decisions', 1)
    ON CONFLICT (kind) DO UPDATE SET version = config_versions.version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER retracted_version AFTER INSERT OR UPDATE OR DELETE ON retracted
    FOR EACH STATEMENT EXECUTE FUNCTION bump_decisions_version();
CREATE TRIGGER splits_version AFTER INSERT OR UPDATE OR DELETE ON splits
    FOR EACH STATEMENT EXECUTE FUNCTION bump_decisions_version();
