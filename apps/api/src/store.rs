//! The SQL: file rows in `files`, contents in `blobs` keyed by SHA-256.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::db::retry_stale;

/// A `files` row (never the contents).
#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: Uuid,
    pub filename: String,
    pub original_filename: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: Vec<u8>,
    /// Passed through as stored: never parsed into a tree on the way out.
    pub metadata: Json<Box<RawValue>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The original's FileRecord, with numbers as numbers and `file_path` a logical name.
#[derive(Debug, Serialize)]
pub struct FileRecord {
    pub id: Uuid,
    pub filename: String,
    pub original_filename: String,
    pub mime_type: String,
    pub size: i64,
    /// `files/<id>`: where the contents are, without exposing any server path.
    pub file_path: String,
    pub sha256: String,
    pub metadata: Box<RawValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<FileRow> for FileRecord {
    fn from(row: FileRow) -> FileRecord {
        FileRecord {
            file_path: format!("files/{}", row.id),
            sha256: hex::encode(&row.sha256),
            id: row.id,
            filename: row.filename,
            original_filename: row.original_filename,
            mime_type: row.mime_type,
            size: row.size,
            metadata: row.metadata.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const FILE_COLUMNS: &str =
    "id, filename, original_filename, mime_type, size, sha256, metadata, created_at, updated_at";

/// What an upload stores.
pub struct NewFile {
    pub id: Uuid,
    pub filename: String,
    pub original_filename: String,
    pub mime_type: &'static str,
    pub sha256: [u8; 32],
    pub content: Bytes,
    pub metadata: Value,
}

/// Store the blob (once per distinct content) and the file row, in one statement (so one
/// transaction and one round trip, where BEGIN, two inserts and COMMIT took four); once more
/// when a concurrent delete removed the shared blob between the blob's insert and the
/// foreign key's check. Owns its arguments so that it can run [`crate::db::detached`].
pub async fn insert_file(pool: PgPool, new: NewFile) -> Result<FileRow, sqlx::Error> {
    match insert_file_once(&pool, &new).await {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23503") => {
            insert_file_once(&pool, &new).await
        }
        other => other,
    }
}

async fn insert_file_once(pool: &PgPool, new: &NewFile) -> Result<FileRow, sqlx::Error> {
    // The foreign key is checked at the end of the statement, where it sees the CTE's blob.
    sqlx::query_as::<_, FileRow>(&format!(
        "WITH blob AS ( \
             INSERT INTO blobs (sha256, size, content) VALUES ($6, $5, $8) \
             ON CONFLICT (sha256) DO NOTHING) \
         INSERT INTO files (id, filename, original_filename, mime_type, size, sha256, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {FILE_COLUMNS}"
    ))
    .bind(new.id)
    .bind(&new.filename)
    .bind(&new.original_filename)
    .bind(new.mime_type)
    .bind(new.content.len() as i64)
    .bind(&new.sha256[..])
    .bind(&new.metadata)
    .bind(&new.content[..])
    .fetch_one(pool)
    .await
}

/// A page of files, newest first, with the total number of files and the `files_version`
/// counter, all from one snapshot.
pub struct Page {
    pub rows: Vec<FileRow>,
    pub total: i64,
    pub version: i64,
}

pub async fn list_files(pool: &PgPool, limit: i64, offset: i64) -> Result<Page, sqlx::Error> {
    #[derive(FromRow)]
    struct Counted {
        #[sqlx(flatten)]
        row: FileRow,
        total: i64,
        version: i64,
    }
    let sql = format!(
        "SELECT {FILE_COLUMNS}, (SELECT count(*) FROM files) AS total, \
                (SELECT version FROM files_version) AS version \
         FROM files ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
    );
    let rows: Vec<Counted> = retry_stale(|| {
        sqlx::query_as(&sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
    })
    .await?;
    let (total, version) = match rows.first() {
        Some(first) => (first.total, first.version),
        None => {
            retry_stale(|| {
                sqlx::query_as(
                    "SELECT (SELECT count(*) FROM files), (SELECT version FROM files_version)",
                )
                .fetch_one(pool)
            })
            .await?
        }
    };
    Ok(Page {
        rows: rows.into_iter().map(|c| c.row).collect(),
        total,
        version,
    })
}

/// The `files_version` counter: it changes whenever a committed transaction changed `files`.
pub async fn files_version(pool: &PgPool) -> Result<i64, sqlx::Error> {
    retry_stale(|| sqlx::query_scalar("SELECT version FROM files_version").fetch_one(pool)).await
}

pub async fn get_file(pool: &PgPool, id: Uuid) -> Result<Option<FileRow>, sqlx::Error> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1");
    retry_stale(|| sqlx::query_as(&sql).bind(id).fetch_optional(pool)).await
}

/// `length` bytes of a blob from `offset` (0-based), or the whole blob.
pub async fn read_blob(
    pool: &PgPool,
    sha256: &[u8],
    range: Option<(u64, u64)>,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    match range {
        None => {
            retry_stale(|| {
                sqlx::query_scalar("SELECT content FROM blobs WHERE sha256 = $1")
                    .bind(sha256)
                    .fetch_optional(pool)
            })
            .await
        }
        Some((offset, length)) => {
            // substring() counts from 1; PostgreSQL reads only the slice it needs from TOAST
            // when the column is stored uncompressed, and never ships the rest.
            retry_stale(|| {
                sqlx::query_scalar(
                    "SELECT substring(content FROM $2 FOR $3) FROM blobs WHERE sha256 = $1",
                )
                .bind(sha256)
                .bind(i32::try_from(offset + 1).unwrap_or(i32::MAX))
                .bind(i32::try_from(length).unwrap_or(i32::MAX))
                .fetch_optional(pool)
            })
            .await
        }
    }
}

/// What [`delete_all_or_none`] did.
pub enum Deletion {
    /// Every file was deleted: their ids and content hashes (for [`collect_blobs`]).
    Deleted(Vec<(Uuid, Vec<u8>)>),
    /// Some ids had no file, so nothing was deleted; these are the ones that exist.
    Missing { existing: Vec<Uuid> },
}

/// Delete every file of `ids` in one transaction, or none when any of them does not exist.
/// Owns its arguments so that it can run [`crate::db::detached`].
pub async fn delete_all_or_none(pool: PgPool, ids: Vec<Uuid>) -> Result<Deletion, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("DELETE FROM files WHERE id = ANY($1) RETURNING id, sha256")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    if deleted.len() == ids.len() {
        tx.commit().await?;
        Ok(Deletion::Deleted(deleted))
    } else {
        tx.rollback().await?;
        Ok(Deletion::Missing {
            existing: deleted.into_iter().map(|(id, _)| id).collect(),
        })
    }
}

/// Delete the blobs among `hashes` that no file references any more.
///
/// Runs after the files' deletion committed, in its own transaction: inside it, it would wait
/// on uploads re-using a blob while holding a `files_version` slot's row lock they need next
/// (a deadlock). The foreign key keeps a blob an upload has just referenced.
pub async fn collect_blobs(pool: &PgPool, hashes: &[Vec<u8>]) -> Result<u64, sqlx::Error> {
    if hashes.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "DELETE FROM blobs b WHERE b.sha256 = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)",
    )
    .bind(hashes)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Delete every blob no file references that is older than a minute (left behind when a
/// task died between a delete and its [`collect_blobs`]); the age spares in-flight uploads.
pub async fn sweep_orphan_blobs(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM blobs b WHERE b.created_at < now() - interval '1 minute' \
         AND NOT EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256)",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Totals for `/api/files/stats/summary`.
#[derive(Debug, Serialize, FromRow)]
pub struct Stats {
    pub total_files: i64,
    pub total_size: i64,
    pub image_count: i64,
    pub pdf_count: i64,
    pub text_count: i64,
    /// Files in none of the three families above.
    pub other_count: i64,
    /// Bytes by family, so a client need not sum sizes over the file list.
    pub image_size: i64,
    pub pdf_size: i64,
    pub text_size: i64,
    pub other_size: i64,
    pub avg_file_size: f64,
    pub max_file_size: i64,
    pub min_file_size: i64,
    /// Bytes actually stored after de-duplication.
    pub stored_size: i64,
}

/// One cheap query: the per-family totals triggers keep (`0003_stats_totals.sql`) and
/// the two ends of the size index, instead of aggregating every row per request.
pub async fn stats(pool: &PgPool) -> Result<Stats, sqlx::Error> {
    retry_stale(|| {
        sqlx::query_as(
            "SELECT COALESCE(sum(files), 0)::bigint AS total_files, \
                    COALESCE(sum(bytes), 0)::bigint AS total_size, \
                    COALESCE(sum(files) FILTER (WHERE family = 'image'), 0)::bigint AS image_count, \
                    COALESCE(sum(files) FILTER (WHERE family = 'pdf'), 0)::bigint AS pdf_count, \
                    COALESCE(sum(files) FILTER (WHERE family = 'text'), 0)::bigint AS text_count, \
                    COALESCE(sum(files) FILTER (WHERE family = 'other'), 0)::bigint AS other_count, \
                    COALESCE(sum(bytes) FILTER (WHERE family = 'image'), 0)::bigint AS image_size, \
                    COALESCE(sum(bytes) FILTER (WHERE family = 'pdf'), 0)::bigint AS pdf_size, \
                    COALESCE(sum(bytes) FILTER (WHERE family = 'text'), 0)::bigint AS text_size, \
                    COALESCE(sum(bytes) FILTER (WHERE family = 'other'), 0)::bigint AS other_size, \
                    COALESCE(round(sum(bytes)::numeric / NULLIF(sum(files), 0), 2), 0)::float8 \
                        AS avg_file_size, \
                    COALESCE((SELECT max(size) FROM files), 0)::bigint AS max_file_size, \
                    COALESCE((SELECT min(size) FROM files), 0)::bigint AS min_file_size, \
                    COALESCE((SELECT bytes FROM blob_totals), 0)::bigint AS stored_size \
             FROM file_totals",
        )
        .fetch_one(pool)
    })
    .await
}

/// A group of files with identical contents.
#[derive(Debug, Serialize, FromRow)]
pub struct DuplicateGroup {
    pub original_filename: String,
    pub size: i64,
    pub mime_type: String,
    pub duplicate_count: i64,
    pub file_ids: Vec<Uuid>,
    #[serde(serialize_with = "hex_bytes")]
    pub sha256: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

pub async fn duplicates(pool: &PgPool) -> Result<Vec<DuplicateGroup>, sqlx::Error> {
    retry_stale(|| {
        sqlx::query_as(
            "SELECT (array_agg(original_filename ORDER BY created_at, id))[1] AS original_filename, \
                    max(size) AS size, \
                    (array_agg(mime_type ORDER BY created_at, id))[1] AS mime_type, \
                    count(*) AS duplicate_count, \
                    array_agg(id ORDER BY created_at, id) AS file_ids, \
                    sha256 \
             FROM files GROUP BY sha256 HAVING count(*) > 1 \
             ORDER BY count(*) DESC, max(size) DESC",
        )
        .fetch_all(pool)
    })
    .await
}
