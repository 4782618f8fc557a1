//! The site's URLs and their handlers, one module per page.

mod delete;
mod duplicates;
mod files;
mod stats;
mod tools;
mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use uuid::Uuid;

use crate::AppState;
use crate::error::PageError;

pub fn router(state: AppState) -> Router {
    // The API enforces the per-file limit; this only bounds one form post of many files.
    let upload_limit = usize::try_from(state.config.max_file_size)
        .unwrap_or(usize::MAX)
        .saturating_mul(upload::MAX_FILES_PER_POST)
        .saturating_add(1024 * 1024);
    Router::new()
        .route("/", get(files::list))
        .route("/health", get(health))
        .route(
            "/upload",
            get(upload::page)
                .post(upload::submit)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/files/delete", get(delete::confirm).post(delete::delete))
        .route("/files/{id}", get(files::detail))
        .route("/files/{id}/thumbnail", get(files::thumbnail))
        .route("/files/{id}/text", get(tools::text))
        .route(
            "/files/{id}/tools/{operation}",
            post(tools::image_operation),
        )
        .route("/stats", get(stats::page))
        .route("/duplicates", get(duplicates::page))
        .route("/static/{file}", get(crate::assets::serve))
        .fallback(|| async { crate::error::not_found() })
        .with_state(state)
}

/// `GET /health`: this process is up. It does not ask the API: a frontend that is up shows
/// its own "file service unavailable" notice, so it must not be restarted for the API's sake.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "service": "file-analyzer-web" }))
}

/// A file id from the URL; anything else is a page that does not exist.
fn file_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound)
}
