//! `file-analyzer-web`: the File Analyzer's web frontend.
//!
//! Configuration by environment: `HOST` (0.0.0.0), `PORT` (80), `HOME_API_TIMEOUT_MS` (500,
//! how long `/` waits for the API before showing its banner), `API_URL` (the API's base URL, reached from
//! this server), `MAX_FILE_SIZE` and `ALLOWED_FILE_TYPES` (shown to users; the API enforces
//! them), `RUST_LOG` (`info`). Logs are JSON lines on stdout, one per request.

use std::net::SocketAddr;
use std::process::ExitCode;

use file_analyzer_web::Config;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(error = %error, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let address = SocketAddr::from((config.host, config.port));
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(error = %error, %address, "cannot listen");
            return ExitCode::from(1);
        }
    };
    tracing::info!(%address, api_url = %config.api_url, "listening");
    match file_analyzer_web::serve(listener, config, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = %error, "the server failed");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .init();
}

/// Completes on SIGTERM (ECS stopping the task) or Ctrl-C; the server then stops accepting
/// and finishes the requests in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
