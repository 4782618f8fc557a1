//! Liveness (`/api/health`, `/health`), readiness (`/api/health/ready`) and `/api`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// Liveness: the process serves HTTP. Never touches the database, so a database outage
/// does not get healthy tasks replaced.
pub async fn live() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok","message":"File Analyzer API is running"}"#,
    )
        .into_response()
}

/// Readiness: the database answers and the schema is in place.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.db.is_ready().await {
        Json(json!({"status": "ready", "database": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "database": "unavailable",
                "message": "the database is unavailable or not migrated yet",
            })),
        )
            .into_response()
    }
}

/// The original's index of endpoints.
pub async fn index() -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "message": "File Analyzer API",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": {
            "health": "GET /api/health",
            "ready": "GET /api/health/ready",
            "openapi": "GET /api/openapi.json",
            "upload": "POST /api/files/upload",
            "list": "GET /api/files?limit=&offset=",
            "get": "GET /api/files/:id",
            "download": "GET /api/files/:id/download",
            "convert": "POST /api/files/:id/convert",
            "compress": "POST /api/files/:id/compress",
            "resize": "POST /api/files/:id/resize",
            "crop": "POST /api/files/:id/crop",
            "extractText": "GET /api/files/:id/extract-text",
            "stats": "GET /api/files/stats/summary",
            "duplicates": "GET /api/files/duplicates",
            "batchDelete": "POST /api/files/batch/delete",
            "delete": "DELETE /api/files/:id",
        }
    }))
}
