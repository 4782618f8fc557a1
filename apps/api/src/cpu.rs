//! CPU-bound work (decoding, encoding, PDF parsing) off the async worker threads, and how
//! its failures read to a client.

use axum::http::StatusCode;

use crate::app::AppState;
use crate::error::AppError;
use crate::imaging::ImageFailure;
use crate::pdf;

/// Run CPU-heavy `work` on the blocking pool, at most one job per core at a time.
pub async fn run_blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = state
        .cpu
        .acquire()
        .await
        .map_err(|e| AppError::internal("waiting for a worker", e))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal("running image or PDF work", e))
}

/// Map an image failure to what the client should hear.
pub fn image_error(failure: ImageFailure) -> AppError {
    match failure {
        ImageFailure::TooLarge { .. } => {
            AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
        }
        ImageFailure::Corrupt(ref source) => {
            tracing::info!(error = %source, "image rejected");
            AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
        }
        ImageFailure::Invalid(message) => AppError::bad_request(message),
        ImageFailure::Encode { .. } => AppError::internal("encoding an image", failure),
    }
}

/// Map a PDF failure to a 422 (the log gets the parser's own words).
pub fn pdf_error(failure: pdf::PdfFailure) -> AppError {
    tracing::info!(error = %crate::error::chain(&failure), "pdf rejected");
    AppError::client(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
}
