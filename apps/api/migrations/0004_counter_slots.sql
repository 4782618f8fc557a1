-- Writers must not wait on one another. Every write to `files` or `blobs` updated the
-- one-row counters of 0002 and 0003 (`files_version`, a `file_totals` row per family,
-- `blob_totals`) and held those row locks until its commit was flushed: all uploads took
-- turns, one WAL flush each, and concurrent commits could never share a flush (issue 12:
-- about 200 uploads/s with 8 clients, 750/s without the counters). Each counter is now
-- spread over 32 slots: a writer updates the slot of its own connection
-- (`pg_backend_pid() % 32`), so concurrent writers mostly touch different rows, and readers
-- add the slots up. Views with the old names and columns keep every reader working,
-- including binaries that predate this migration (a rollback). The sums only ever grow for
-- `files_version` (each change adds 1 to some slot), so a cached listing is still never
-- stale.

-- Writers wait while the counters move (this runs in the migration's transaction).
LOCK TABLE files, blobs IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION counter_slot() RETURNS SMALLINT
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT (pg_backend_pid() % 32)::smallint $$;

CREATE TABLE files_version_slots (
    slot    SMALLINT PRIMARY KEY CHECK (slot >= 0 AND slot < 32),
    version BIGINT NOT NULL
);
INSERT INTO files_version_slots (slot, version)
SELECT s, CASE WHEN s = 0 THEN (SELECT version FROM files_version) ELSE 0 END
FROM generate_series(0, 31) AS s;

CREATE TABLE file_totals_slots (
    family TEXT NOT NULL,
    slot   SMALLINT NOT NULL CHECK (slot >= 0 AND slot < 32),
    files  BIGINT NOT NULL,
    bytes  BIGINT NOT NULL,
    PRIMARY KEY (family, slot)
);
INSERT INTO file_totals_slots (family, slot, files, bytes)
SELECT family, s, 0, 0
FROM unnest(ARRAY['image', 'pdf', 'text', 'other']) AS family, generate_series(0, 31) AS s;
UPDATE file_totals_slots t SET files = o.files, bytes = o.bytes
FROM file_totals o WHERE t.family = o.family AND t.slot = 0;

CREATE TABLE blob_totals_slots (
    slot  SMALLINT PRIMARY KEY CHECK (slot >= 0 AND slot < 32),
    bytes BIGINT NOT NULL
);
INSERT INTO blob_totals_slots (slot, bytes)
SELECT s, CASE WHEN s = 0 THEN (SELECT bytes FROM blob_totals) ELSE 0 END
FROM generate_series(0, 31) AS s;

-- The counts are carried over above; the one-row tables become views of the slots.
DROP TABLE files_version;
CREATE VIEW files_version AS
    SELECT true AS id, sum(version)::bigint AS version FROM files_version_slots;
DROP TABLE file_totals;
CREATE VIEW file_totals AS
    SELECT family, sum(files)::bigint AS files, sum(bytes)::bigint AS bytes
    FROM file_totals_slots GROUP BY family;
DROP TABLE blob_totals;
CREATE VIEW blob_totals AS
    SELECT true AS id, sum(bytes)::bigint AS bytes FROM blob_totals_slots;

-- The same triggers (0002, 0003), now writing the writer's own slot.
CREATE OR REPLACE FUNCTION files_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE files_version_slots SET version = version + 1 WHERE slot = counter_slot();
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION file_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE file_totals_slots SET files = files - 1, bytes = bytes - OLD.size
        WHERE family = file_family(OLD.mime_type) AND slot = counter_slot();
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE file_totals_slots SET files = files + 1, bytes = bytes + NEW.size
        WHERE family = file_family(NEW.mime_type) AND slot = counter_slot();
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION file_totals_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE file_totals_slots SET files = 0, bytes = 0;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION blob_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE blob_totals_slots SET bytes = 0;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE blob_totals_slots SET bytes = bytes - OLD.size WHERE slot = counter_slot();
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE blob_totals_slots SET bytes = bytes + NEW.size WHERE slot = counter_slot();
    END IF;
    RETURN NULL;
END;
$$;
