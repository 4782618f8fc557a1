-- File contents, content-addressed: identical uploads share one row.
CREATE TABLE IF NOT EXISTS blobs (
    sha256     BYTEA PRIMARY KEY CHECK (octet_length(sha256) = 32),
    size       BIGINT NOT NULL CHECK (size >= 0),
    content    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per upload; contents live in `blobs`.
CREATE TABLE IF NOT EXISTS files (
    id                UUID PRIMARY KEY,
    filename          TEXT NOT NULL,
    original_filename TEXT NOT NULL,
    mime_type         TEXT NOT NULL,
    size              BIGINT NOT NULL CHECK (size >= 0),
    sha256            BYTEA NOT NULL REFERENCES blobs (sha256),
    metadata          JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The listing orders by creation time; duplicates and blob clean-up look up by hash.
CREATE INDEX IF NOT EXISTS files_created_at_idx ON files (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS files_sha256_idx ON files (sha256);

-- Uploads are mostly already-compressed images and PDFs: skip TOAST compression, which
-- also lets Range requests read only the slice they need.
ALTER TABLE blobs ALTER COLUMN content SET STORAGE EXTERNAL;
