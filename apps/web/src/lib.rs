//! The File Analyzer web frontend: server-rendered pages over the File Analyzer API.
//!
//! Every page works without JavaScript (forms post, then redirect with a one-shot message);
//! the only script adds drag and drop, per-file upload progress and a copy button. The
//! browser talks to the API on the same origin (`/api/...`, routed by the load balancer);
//! this server reaches it through `API_URL`.

pub mod api;
mod assets;
mod chart;
pub mod config;
mod error;
mod flash;
mod format;
mod middleware;
mod routes;
mod views;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use config::Config;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub api: api::ApiClient,
    pub config: Arc<Config>,
}

/// The whole site as an axum router.
pub fn router(config: Config) -> Router {
    let access_log = config.access_log;
    let state = AppState {
        api: api::ApiClient::new(config.api_url.clone()),
        config: Arc::new(config),
    };
    routes::router(state)
        .layer(axum::middleware::from_fn(flash::clear_after_display))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn(middleware::same_origin_posts))
        .layer(axum::middleware::from_fn_with_state(
            access_log,
            middleware::log_request,
        ))
}

/// Serves the site on `listener` until `shutdown` completes, then stops accepting
/// connections and returns once the requests in flight are answered.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}
