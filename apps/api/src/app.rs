//! The router: routes, shared state, CORS, request logging, JSON fallbacks.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::db::Database;
use crate::error::AppError;
use crate::list_cache::ListCache;
use crate::routes::{download, files, health, transform, upload};
use crate::stats_cache::StatsCache;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Database,
    pub config: Arc<Config>,
    /// Bounds concurrent CPU-heavy work (decoding, encoding, PDF parsing) to the cores,
    /// so a burst of image requests queues instead of holding many decoded images at once.
    pub cpu: Arc<Semaphore>,
    pub list_cache: Arc<ListCache>,
    pub stats_cache: Arc<StatsCache>,
}

impl AppState {
    pub fn new(db: Database, config: Config) -> AppState {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        AppState {
            db,
            config: Arc::new(config),
            cpu: Arc::new(Semaphore::new(cores)),
            list_cache: Arc::new(ListCache::default()),
            stats_cache: Arc::new(StatsCache::default()),
        }
    }
}

pub fn router(state: AppState) -> Router {
    // Multipart framing around the file is small; the file itself is counted exactly
    // while streaming (see `routes::upload`).
    let upload_body_limit = usize::try_from(state.config.max_file_size)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    let api = Router::new()
        .route("/api", get(health::index))
        .route("/api/health", get(health::live))
        .route("/api/health/ready", get(health::ready))
        .route("/api/openapi.json", get(crate::openapi::document))
        .route(
            "/api/files/upload",
            post(upload::upload).layer(DefaultBodyLimit::max(upload_body_limit)),
        )
        .route("/api/files", get(files::list))
        .route("/api/files/stats/summary", get(files::stats))
        .route("/api/files/duplicates", get(files::duplicates))
        .route("/api/files/batch/delete", post(files::batch_delete))
        .route("/api/files/{id}", get(files::get).delete(files::delete))
        .route("/api/files/{id}/download", get(download::download))
        .route("/api/files/{id}/convert", post(transform::convert))
        .route("/api/files/{id}/compress", post(transform::compress))
        .route("/api/files/{id}/resize", post(transform::resize))
        .route("/api/files/{id}/crop", post(transform::crop))
        .route("/api/files/{id}/extract-text", get(transform::extract_text))
        .route("/health", get(health::live))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    api.layer(cors(&state.config))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.config.access_log,
            crate::request_log::log_request,
        ))
}

fn cors(config: &Config) -> CorsLayer {
    let origin = if config.frontend_url == "*" {
        AllowOrigin::any()
    } else {
        match HeaderValue::from_str(&config.frontend_url) {
            Ok(value) => AllowOrigin::exact(value),
            // Config validated it already; fall back to allowing nothing cross-origin.
            Err(_) => AllowOrigin::list([]),
        }
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_RANGE,
            HeaderName::from_static("x-amzn-trace-id"),
        ])
        .expose_headers([
            header::CONTENT_DISPOSITION,
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::ETAG,
            HeaderName::from_static("x-request-id"),
        ])
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    AppError::not_found(format!(
        "no route for {method} {}",
        crate::extract::clip(uri.path())
    ))
    .into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    AppError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}",
            crate::extract::clip(uri.path())
        ),
    )
    .into_response()
}
