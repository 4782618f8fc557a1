-- A counter bumped by every change to `files`, whichever binary makes it (a trigger, so
-- tasks of an older version count too during a rolling deploy). Tasks cache listings and
-- check this one-row counter, in the same snapshot, instead of re-reading the rows.
CREATE TABLE IF NOT EXISTS files_version (
    id      BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    version BIGINT NOT NULL
);
INSERT INTO files_version (id, version) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION files_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE files_version SET version = version + 1 WHERE id;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS files_version_bump ON files;
CREATE TRIGGER files_version_bump
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON files
    FOR EACH STATEMENT EXECUTE FUNCTION files_version_bump();
