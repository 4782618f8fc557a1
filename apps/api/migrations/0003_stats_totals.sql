-- Totals for the stats summary, kept by triggers in each writer's own transaction (so
-- tasks of an older version count too during a rolling deploy): the summary reads four
-- rows and two index ends instead of scanning every file and blob.
CREATE OR REPLACE FUNCTION file_family(mime TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN mime LIKE 'image/%' THEN 'image'
        WHEN mime = 'application/pdf' THEN 'pdf'
        WHEN mime LIKE 'text/%' THEN 'text'
        ELSE 'other'
    END
$$;

CREATE TABLE IF NOT EXISTS file_totals (
    family TEXT PRIMARY KEY,
    files  BIGINT NOT NULL,
    bytes  BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_totals (
    id    BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    bytes BIGINT NOT NULL
);

-- Writers wait while the totals are filled in from what is there.
LOCK TABLE files, blobs IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO file_totals (family, files, bytes)
SELECT family, 0, 0 FROM unnest(ARRAY['image', 'pdf', 'text', 'other']) AS family
ON CONFLICT (family) DO NOTHING;
UPDATE file_totals t SET files = 0, bytes = 0;
UPDATE file_totals t SET files = s.files, bytes = s.bytes
FROM (SELECT file_family(mime_type) AS family, count(*) AS files,
             COALESCE(sum(size), 0) AS bytes
      FROM files GROUP BY 1) s
WHERE t.family = s.family;
INSERT INTO blob_totals (id, bytes) VALUES (true, (SELECT COALESCE(sum(size), 0) FROM blobs))
ON CONFLICT (id) DO UPDATE SET bytes = EXCLUDED.bytes;

CREATE OR REPLACE FUNCTION file_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE file_totals SET files = files - 1, bytes = bytes - OLD.size
        WHERE family = file_family(OLD.mime_type);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE file_totals SET files = files + 1, bytes = bytes + NEW.size
        WHERE family = file_family(NEW.mime_type);
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION file_totals_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE file_totals SET files = 0, bytes = 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION blob_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE blob_totals SET bytes = 0 WHERE id;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE blob_totals SET bytes = bytes - OLD.size WHERE id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE blob_totals SET bytes = bytes + NEW.size WHERE id;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS file_totals_count ON files;
CREATE TRIGGER file_totals_count
    AFTER INSERT OR DELETE OR UPDATE OF size, mime_type ON files
    FOR EACH ROW EXECUTE FUNCTION file_totals_count();
DROP TRIGGER IF EXISTS file_totals_clear ON files;
CREATE TRIGGER file_totals_clear
    AFTER TRUNCATE ON files
    FOR EACH STATEMENT EXECUTE FUNCTION file_totals_clear();
DROP TRIGGER IF EXISTS blob_totals_count ON blobs;
CREATE TRIGGER blob_totals_count
    AFTER INSERT OR DELETE OR UPDATE OF size ON blobs
    FOR EACH ROW EXECUTE FUNCTION blob_totals_count();
DROP TRIGGER IF EXISTS blob_totals_clear ON blobs;
CREATE TRIGGER blob_totals_clear
    AFTER TRUNCATE ON blobs
    FOR EACH STATEMENT EXECUTE FUNCTION blob_totals_count();

-- The smallest and largest file are the ends of this index.
CREATE INDEX IF NOT EXISTS files_size_idx ON files (size);
