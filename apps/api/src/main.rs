//! The File Analyzer API: axum on tokio, PostgreSQL through sqlx.
//!
//! Start-up never waits for the database: the pool connects lazily and the migrations are
//! applied in the background, so the process serves `/api/health` at once and data routes
//! answer 503 until PostgreSQL is there.

mod app;
mod config;
mod cpu;
mod db;
mod error;
mod extract;
mod imaging;
mod list_cache;
mod names;
mod openapi;
mod pdf;
mod request_log;
mod routes;
mod sniff;
mod stats_cache;
mod store;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::db::Database;
use crate::error::chain;

/// How long in-flight requests get after SIGTERM (ECS waits 30 s before SIGKILL).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("file-analyzer-api: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // Panics (a parser crate's, contained by catch_unwind) are logged as JSON like the rest.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %chain(&error), "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

fn init_logging() {
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

async fn serve(config: Config) -> ExitCode {
    let address = SocketAddr::from((config.host, config.port));
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%address, error = %chain(&error), "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        %address,
        db_host = %config.db_host,
        db_port = config.db_port,
        db_name = %config.db_name,
        max_file_size = config.max_file_size,
        "file analyzer api listening"
    );
    let db = Database::connect_lazy(&config);
    tokio::spawn(db.clone().migrate_until_done());
    let app = app::router(app::AppState::new(db.clone(), config));

    let stopping = std::sync::Arc::new(Notify::new());
    let signalled = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop_signal().await;
        tracing::info!("stop signal received: no new connections, finishing in-flight requests");
        signalled.notify_waiters();
    });
    let grace = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(error) = result {
                tracing::error!(error = %chain(&error), "server failed");
                return ExitCode::FAILURE;
            }
        }
        () = grace => {
            tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "in-flight requests cut after the grace period");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), db.close()).await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGTERM (ECS, docker stop) or SIGINT (Ctrl-C).
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(error = %chain(&error), "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
