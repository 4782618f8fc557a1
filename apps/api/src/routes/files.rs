//! Listing, reading, deleting and summarising file records.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::db::detached;
use crate::error::AppError;
use crate::extract::{JsonBody, clip, file_id};
use crate::routes::success;
use crate::store::{self, Deletion, FileRecord};

/// Most rows one page may ask for.
const MAX_LIMIT: i64 = 1000;
/// Most ids one batch delete may name.
const MAX_BATCH: usize = 1000;

/// `{success, data, count, total, limit, offset}`, written straight to bytes.
#[derive(Serialize)]
struct ListBody<'a> {
    success: bool,
    data: &'a [FileRecord],
    /// Rows in this page (the original's field).
    count: usize,
    /// All files.
    total: i64,
    limit: i64,
    offset: i64,
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let limit = int_param(&query, "limit", 50, 1, MAX_LIMIT)?;
    let offset = int_param(&query, "offset", 0, 0, i64::MAX)?;
    let pool = state.db.pool()?;
    let version = store::files_version(pool)
        .await
        .map_err(|e| AppError::db("listing files", e))?;
    let body = match state.list_cache.get(version, (limit, offset)) {
        Some(body) => body,
        None => {
            let page = store::list_files(pool, limit, offset)
                .await
                .map_err(|e| AppError::db("listing files", e))?;
            let records: Vec<FileRecord> = page.rows.into_iter().map(FileRecord::from).collect();
            let body = serde_json::to_vec(&ListBody {
                success: true,
                data: &records,
                count: records.len(),
                total: page.total,
                limit,
                offset,
            })
            .map_err(|e| AppError::internal("rendering the file list", e))?;
            let body = Bytes::from(body);
            state
                .list_cache
                .put(page.version, (limit, offset), body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn int_param(
    query: &HashMap<String, String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, AppError> {
    let Some(raw) = query.get(name).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(AppError::bad_request(if max == i64::MAX {
            format!(
                "`{name}` must be a whole number ≥ {min} (got `{}`)",
                clip(raw)
            )
        } else {
            format!(
                "`{name}` must be a whole number from {min} to {max} (got `{}`)",
                clip(raw)
            )
        })),
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = file_id(&id)?;
    let row = find(&state, id).await?;
    Ok(Json(success(FileRecord::from(row), json!({}))))
}

/// The file row or 404.
pub async fn find(state: &AppState, id: Uuid) -> Result<store::FileRow, AppError> {
    store::get_file(state.db.pool()?, id)
        .await
        .map_err(|e| AppError::db("reading a file record", e))?
        .ok_or_else(|| AppError::not_found(format!("file {id} not found")))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = file_id(&id)?;
    let pool = state.db.pool()?.clone();
    let deletion = detached("deleting a file", store::delete_all_or_none(pool, vec![id])).await?;
    let Deletion::Deleted(deleted) = deletion else {
        return Err(AppError::not_found(format!("file {id} not found")));
    };
    collect_blobs(&state, deleted).await;
    state.stats_cache.changed();
    Ok(Json(json!({
        "success": true,
        "message": "File deleted successfully",
        "id": id,
    })))
}

#[derive(Deserialize)]
pub struct BatchDelete {
    ids: Option<Vec<Value>>,
}

/// All or nothing: every id must be a UUID of an existing file, or nothing is deleted;
/// the answer says, per id, what happened or what was wrong.
pub async fn batch_delete(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<BatchDelete>,
) -> Result<Json<Value>, AppError> {
    let raw_ids = body
        .ids
        .ok_or_else(|| AppError::bad_request("`ids` must be an array of file ids"))?;
    if raw_ids.is_empty() {
        return Err(AppError::bad_request("`ids` is empty"));
    }
    if raw_ids.len() > MAX_BATCH {
        return Err(AppError::bad_request(format!(
            "`ids` has {} entries; at most {MAX_BATCH} per batch",
            raw_ids.len()
        )));
    }
    let parsed: Vec<(String, Option<Uuid>)> = raw_ids
        .iter()
        .map(|v| {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            let id = v.as_str().and_then(|s| Uuid::parse_str(s).ok());
            (text, id)
        })
        .collect();
    if parsed.iter().any(|(_, id)| id.is_none()) {
        let results: Vec<Value> = parsed
            .iter()
            .map(|(text, id)| match id {
                Some(id) => json!({"id": id, "status": "not_deleted"}),
                None => json!({"id": clip(text), "status": "invalid_id"}),
            })
            .collect();
        return Err(AppError::bad_request(
            "some ids are not file ids (UUIDs); nothing was deleted",
        )
        .with_details(json!({ "results": results })));
    }
    let mut ids: Vec<Uuid> = parsed.iter().filter_map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let pool = state.db.pool()?.clone();
    let deletion = detached(
        "deleting files",
        store::delete_all_or_none(pool, ids.clone()),
    )
    .await?;
    let deleted = match deletion {
        Deletion::Deleted(deleted) => deleted,
        Deletion::Missing { existing } => return Err(missing(&ids, &existing)),
    };
    let count = deleted.len();
    collect_blobs(&state, deleted).await;
    state.stats_cache.changed();
    let results: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "status": "deleted"}))
        .collect();
    Ok(Json(json!({
        "success": true,
        "message": format!("Deleted {count} file(s)"),
        "deletedCount": count,
        "results": results,
    })))
}

/// The 404 of a batch in which some ids have no file: per id, what happened.
fn missing(ids: &[Uuid], existing: &[Uuid]) -> AppError {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            let status = if existing.contains(id) {
                "not_deleted"
            } else {
                "not_found"
            };
            json!({"id": id, "status": status})
        })
        .collect();
    AppError::client(
        StatusCode::NOT_FOUND,
        format!(
            "{} of {} files not found; nothing was deleted",
            ids.len() - existing.len(),
            ids.len()
        ),
    )
    .with_details(json!({ "results": results }))
}

/// The summary, from this task's cache while it is fresh (`stats_cache`: up to a quarter of
/// a second behind other tasks' writes, never behind this task's).
pub async fn stats(State(state): State<AppState>) -> Result<Response, AppError> {
    let pool = state.db.pool()?;
    let body = state
        .stats_cache
        .get_or_render(|| async {
            let stats = store::stats(pool)
                .await
                .map_err(|e| AppError::db("computing statistics", e))?;
            serde_json::to_vec(&success(stats, json!({})))
                .map(Bytes::from)
                .map_err(|e| AppError::internal("rendering statistics", e))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn duplicates(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let groups = store::duplicates(state.db.pool()?)
        .await
        .map_err(|e| AppError::db("finding duplicates", e))?;
    let count = groups.len();
    Ok(Json(success(groups, json!({ "count": count }))))
}

/// Remove the contents no file references any more. The files are already gone (committed),
/// so a failure here is logged, not reported: the periodic sweep collects what is left.
async fn collect_blobs(state: &AppState, deleted: Vec<(Uuid, Vec<u8>)>) {
    let hashes: Vec<Vec<u8>> = deleted.into_iter().map(|(_, hash)| hash).collect();
    let Ok(pool) = state.db.pool() else { return };
    if let Err(error) = store::collect_blobs(pool, &hashes).await {
        tracing::warn!(error = %crate::error::chain(&error), "cannot delete unreferenced contents yet");
    }
}
