//! `AppError`: what went wrong, as the client sees it (status + clear JSON message) and as
//! the log sees it (the whole chain).

use std::error::Error as StdError;
use std::fmt::Write as _;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Every failure a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client's mistake: the message is written for them and shown as is.
    #[error("{message}")]
    Client {
        status: StatusCode,
        message: String,
        /// Extra fields merged into the `error` object (per-id results, limits).
        details: Option<Value>,
    },
    /// The database cannot be reached (down, restarting, not migrated yet).
    #[error("database unavailable while {action}")]
    Unavailable {
        action: &'static str,
        #[source]
        source: Option<sqlx::Error>,
    },
    /// Our failure; the client gets a generic message, the log gets the chain.
    #[error("internal error while {action}")]
    Internal {
        action: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl AppError {
    pub fn client(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError::Client {
            status,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> AppError {
        Self::client(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        Self::client(StatusCode::NOT_FOUND, message)
    }

    pub fn with_details(self, value: Value) -> AppError {
        match self {
            AppError::Client {
                status, message, ..
            } => AppError::Client {
                status,
                message,
                details: Some(value),
            },
            other => other,
        }
    }

    /// A database error while doing `action`: unreachable databases are 503, anything else
    /// is ours (500).
    pub fn db(action: &'static str, source: sqlx::Error) -> AppError {
        if is_connection_error(&source) {
            if !matches!(source, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
                crate::db::note_dead_connection();
            }
            AppError::Unavailable {
                action,
                source: Some(source),
            }
        } else {
            AppError::Internal {
                action,
                source: Box::new(source),
            }
        }
    }

    pub fn internal(action: &'static str, source: impl StdError + Send + Sync + 'static) -> Self {
        AppError::Internal {
            action,
            source: Box::new(source),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Client { status, .. } => *status,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whether a database error means "cannot talk to the database" rather than "the query
/// is wrong": those are retried by clients and answered 503.
pub fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
        // 08xxx connection exceptions, 53300 too_many_connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

/// `error: cause: cause's cause`, for logs.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// The original's error envelope.
pub fn envelope(message: &str, details: Option<Value>) -> Value {
    let mut error = json!({ "message": message });
    if let (Some(Value::Object(extra)), Value::Object(target)) = (details, &mut error) {
        target.extend(extra);
    }
    json!({ "success": false, "error": error })
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, details) = match &self {
            AppError::Client {
                message, details, ..
            } => {
                tracing::info!(status = status.as_u16(), error = %message, "request refused");
                (message.clone(), details.clone())
            }
            AppError::Unavailable { .. } => {
                tracing::warn!(status = status.as_u16(), error = %chain(&self), "database unavailable");
                (
                    "the database is unavailable; try again shortly".to_owned(),
                    None,
                )
            }
            AppError::Internal { .. } => {
                tracing::error!(status = status.as_u16(), error = %chain(&self), "request failed");
                ("internal server error".to_owned(), None)
            }
        };
        let mut response = (status, Json(envelope(&message, details))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("2"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_merges_details() {
        let value = envelope("nope", Some(json!({"results": [1]})));
        assert_eq!(
            value,
            json!({"success": false, "error": {"message": "nope", "results": [1]}})
        );
    }

    #[test]
    fn pool_timeouts_are_unavailable_not_internal() {
        let error = AppError::db("listing files", sqlx::Error::PoolTimedOut);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        let error = AppError::db("listing files", sqlx::Error::RowNotFound);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
