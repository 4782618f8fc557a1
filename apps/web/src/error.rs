//! Failures of page handlers, rendered as pages people can read (never a raw error).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::ApiError;
use crate::views::ErrorPage;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("calling the API failed")]
    Api(#[from] ApiError),
    #[error("no page or file at this address")]
    NotFound,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match &self {
            PageError::NotFound => not_found(),
            PageError::Api(api) if api.status() == Some(StatusCode::NOT_FOUND) => not_found(),
            PageError::Api(api) if api.is_unavailable() => {
                tracing::warn!(error = %chain(&self), "the API is unavailable");
                ErrorPage::response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "File service unavailable",
                    "The file service is not answering right now, so this page cannot be shown. \
                     Your files are safe; please try again in a moment.",
                )
            }
            PageError::Api(api @ ApiError::Refused { status, .. }) => {
                tracing::info!(error = %chain(&self), "the API refused a request");
                ErrorPage::response(*status, "Request refused", &api.user_message())
            }
            PageError::Api(_) => {
                tracing::error!(error = %chain(&self), "the API failed");
                ErrorPage::response(
                    StatusCode::BAD_GATEWAY,
                    "Something went wrong",
                    "The file service could not complete this request. Please try again.",
                )
            }
        }
    }
}

pub fn not_found() -> Response {
    ErrorPage::response(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing at this address. The file may have been deleted.",
    )
}

/// The error and all its causes on one line, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
