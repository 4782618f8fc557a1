//! The File Analyzer API as seen from the web server: typed calls over `API_URL`.

use std::time::Duration;

use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// One stored file, as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct FileRecord {
    pub id: Uuid,
    pub original_filename: String,
    pub mime_type: String,
    #[serde(deserialize_with = "lenient::u64")]
    pub size: u64,
    #[serde(default)]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub created_at: String,
}

/// `GET /api/files/stats/summary`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stats {
    #[serde(deserialize_with = "lenient::u64", default)]
    pub total_files: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub total_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub image_count: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub pdf_count: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub text_count: u64,
    /// Bytes by family; an API without them reads as zeros.
    #[serde(deserialize_with = "lenient::u64", default)]
    pub image_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub pdf_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub text_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub other_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub avg_file_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub max_file_size: u64,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub min_file_size: u64,
}

/// One group of files with the same content (`GET /api/files/duplicates`).
#[derive(Debug, Clone, Deserialize)]
pub struct DuplicateGroup {
    pub original_filename: String,
    #[serde(deserialize_with = "lenient::u64", default)]
    pub size: u64,
    #[serde(default)]
    pub mime_type: String,
    pub file_ids: Vec<Uuid>,
}

/// `GET /api/files/:id/extract-text`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExtractedText {
    pub text: String,
}

/// A page of files, and whether more follow.
#[derive(Debug, Clone)]
pub struct FilePage {
    pub files: Vec<FileRecord>,
    pub has_more: bool,
}

/// Why a call to the API did not give what was asked for.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer at all: connection refused, timeout, reset.
    #[error("the API at {base} did not answer {path}")]
    Unreachable {
        base: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API (or the load balancer in front of it) answered with a server error.
    #[error("the API failed {path} with status {status}")]
    Failed { path: String, status: StatusCode },
    /// The API refused the request; `message` is its explanation, meant for users.
    #[error("the API refused {path} with status {status}: {message}")]
    Refused {
        path: String,
        status: StatusCode,
        message: String,
    },
    /// The API answered 2xx with a body that does not have the documented shape.
    #[error("the API's answer to {path} has an unexpected shape")]
    Malformed {
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ApiError {
    /// True when the API is down or unreachable (as opposed to refusing this request).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
            || matches!(self, Self::Failed { status, .. } if matches!(status.as_u16(), 502..=504))
    }

    /// The API's status, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } | Self::Failed { status, .. } => Some(*status),
            Self::Unreachable { .. } | Self::Malformed { .. } => None,
        }
    }

    /// A sentence for users: the API's own message when it refused, a plain one otherwise.
    pub fn user_message(&self) -> String {
        match self {
            Self::Refused { message, .. } => sentence(message),
            _ if self.is_unavailable() => {
                "The file service is unavailable right now. Please try again in a moment.".into()
            }
            Self::Failed { .. } | Self::Malformed { .. } | Self::Unreachable { .. } => {
                "The file service could not complete this request.".into()
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// Ordinary calls: enough for a slow database, short enough that a page never hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Image work (convert, resize...) on a 10 MiB picture takes longer.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A client of the API. Cheap to clone (one shared connection pool).
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: base.into(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, path: &str, source: reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            base: self.base.clone(),
            path: path.to_owned(),
            source,
        }
    }

    /// Sends `request`; a non-2xx answer becomes an [`ApiError`] carrying the API's message.
    async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let response = request
            .send()
            .await
            .map_err(|source| self.unreachable(path, source))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_server_error() {
            return Err(ApiError::Failed {
                path: path.to_owned(),
                status,
            });
        }
        let message = response
            .json::<ErrorEnvelope>()
            .await
            .map(|e| e.error.message)
            .unwrap_or_else(|_| default_refusal(status));
        Err(ApiError::Refused {
            path: path.to_owned(),
            status,
            message,
        })
    }

    /// The envelope's `data` of a call bounded by [`CALL_TIMEOUT`].
    async fn data<T: DeserializeOwned>(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        self.data_within(path, request, CALL_TIMEOUT).await
    }

    /// The envelope's `data` of a call bounded by `timeout`.
    async fn data_within<T: DeserializeOwned>(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let response = self.send(path, request.timeout(timeout)).await?;
        let envelope: Envelope<T> = json_body(path, response).await?;
        Ok(envelope.data)
    }

    /// `GET /api/health`.
    pub async fn health(&self, timeout: Duration) -> Result<(), ApiError> {
        let path = "/api/health";
        self.send(path, self.http.get(self.url(path)).timeout(timeout))
            .await
            .map(|_| ())
    }

    /// One page of files, newest first; `timeout` bounds the whole call.
    pub async fn list_files(
        &self,
        limit: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<FilePage, ApiError> {
        let path = "/api/files";
        // One more than asked tells whether another page follows, whatever `count` means.
        let request = self
            .http
            .get(self.url(path))
            .query(&[("limit", u64::from(limit) + 1), ("offset", offset)]);
        let mut files: Vec<FileRecord> = self.data_within(path, request, timeout).await?;
        let has_more = files.len() > limit as usize;
        files.truncate(limit as usize);
        Ok(FilePage { files, has_more })
    }

    /// `GET /api/files/:id`.
    pub async fn file(&self, id: Uuid) -> Result<FileRecord, ApiError> {
        let path = format!("/api/files/{id}");
        self.data(&path, self.http.get(self.url(&path))).await
    }

    /// `GET /api/files/stats/summary`.
    pub async fn stats(&self) -> Result<Stats, ApiError> {
        let path = "/api/files/stats/summary";
        self.data(path, self.http.get(self.url(path))).await
    }

    /// `GET /api/files/duplicates`.
    pub async fn duplicates(&self) -> Result<Vec<DuplicateGroup>, ApiError> {
        let path = "/api/files/duplicates";
        self.data(path, self.http.get(self.url(path))).await
    }

    /// `GET /api/files/:id/extract-text`.
    pub async fn extract_text(&self, id: Uuid) -> Result<ExtractedText, ApiError> {
        let path = format!("/api/files/{id}/extract-text");
        self.data_within(&path, self.http.get(self.url(&path)), IMAGE_TIMEOUT)
            .await
    }

    /// `POST /api/files/batch/delete`; returns how many files the API deleted.
    pub async fn delete_files(&self, ids: &[Uuid]) -> Result<u64, ApiError> {
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(rename = "deletedCount", deserialize_with = "lenient::u64", default)]
            deleted_count: u64,
        }
        let path = "/api/files/batch/delete";
        let request = self
            .http
            .post(self.url(path))
            .json(&serde_json::json!({ "ids": ids }))
            .timeout(CALL_TIMEOUT);
        let response = self.send(path, request).await?;
        let deleted: Deleted = json_body(path, response).await?;
        Ok(deleted.deleted_count)
    }

    /// `POST /api/files/upload` with one file whose bytes come from `body` (streamed, never
    /// held whole in memory).
    pub async fn upload(
        &self,
        file_name: &str,
        content_type: &str,
        body: reqwest::Body,
    ) -> Result<FileRecord, ApiError> {
        let path = "/api/files/upload";
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            part_content_type(content_type),
        );
        let part = reqwest::multipart::Part::stream(body)
            .file_name(file_name.to_owned())
            .headers(headers);
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .send(path, self.http.post(self.url(path)).multipart(form))
            .await?;
        let envelope: Envelope<FileRecord> = json_body(path, response).await?;
        Ok(envelope.data)
    }

    /// `POST /api/files/:id/<operation>` (convert, compress, resize, crop): the successful
    /// response, whose body is the resulting image, for the caller to stream on.
    pub async fn image_operation(
        &self,
        id: Uuid,
        operation: &str,
        params: &serde_json::Value,
    ) -> Result<reqwest::Response, ApiError> {
        let path = format!("/api/files/{id}/{operation}");
        let request = self
            .http
            .post(self.url(&path))
            .json(params)
            .timeout(IMAGE_TIMEOUT);
        self.send(&path, request).await
    }
}

/// A successful response's JSON body.
async fn json_body<T: DeserializeOwned>(
    path: &str,
    response: reqwest::Response,
) -> Result<T, ApiError> {
    response.json().await.map_err(|source| ApiError::Malformed {
        path: path.to_owned(),
        source,
    })
}

/// The API's messages may start in lower case (log style); pages show sentences.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "The file service refused the request.".into(),
    }
}

/// The browser's declared type when it looks like one, `application/octet-stream` otherwise
/// (the API checks the content anyway).
fn part_content_type(declared: &str) -> reqwest::header::HeaderValue {
    let plausible = declared.split_once('/').is_some_and(|(kind, sub)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        token(kind) && token(sub)
    });
    let value = if plausible {
        declared
    } else {
        "application/octet-stream"
    };
    reqwest::header::HeaderValue::from_str(value).unwrap_or(
        reqwest::header::HeaderValue::from_static("application/octet-stream"),
    )
}

fn default_refusal(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "That file does not exist (it may have been deleted).".into(),
        StatusCode::PAYLOAD_TOO_LARGE => "The file is too large.".into(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "This type of file is not accepted.".into(),
        _ => format!(
            "The file service refused the request ({}).",
            status.canonical_reason().unwrap_or("error")
        ),
    }
}

/// Numbers the original API sometimes sent as strings (PostgreSQL `bigint`/`numeric`).
mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(u64),
        Float(f64),
        Text(String),
    }

    pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        match Option::<Number>::deserialize(deserializer)? {
            None => Ok(0),
            Some(Number::Int(n)) => Ok(n),
            Some(Number::Float(f)) if f >= 0.0 => Ok(f.round() as u64),
            Some(Number::Float(f)) => Err(D::Error::custom(format!("negative size {f}"))),
            Some(Number::Text(s)) => {
                let s = s.trim();
                s.parse::<u64>()
                    .or_else(|_| s.parse::<f64>().map(|f| f.max(0.0).round() as u64))
                    .map_err(|_| D::Error::custom(format!("not a number: {s:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_may_arrive_as_strings_or_numbers() {
        let stats: Stats = serde_json::from_value(serde_json::json!({
            "total_files": "3", "total_size": 1200, "avg_file_size": "400.0000",
            "max_file_size": null, "image_count": 2, "image_size": "700", "pdf_size": 500
        }))
        .unwrap();
        assert_eq!(
            (stats.image_size, stats.pdf_size, stats.text_size),
            (700, 500, 0)
        );
        assert_eq!(stats.total_files, 3);
        assert_eq!(stats.total_size, 1200);
        assert_eq!(stats.avg_file_size, 400);
        assert_eq!(stats.max_file_size, 0);
        assert_eq!(stats.image_count, 2);
    }

    #[test]
    fn refusals_keep_the_api_message_for_users() {
        let err = ApiError::Refused {
            path: "/api/files/upload".into(),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "File too large".into(),
        };
        assert_eq!(err.user_message(), "File too large");
        let err = ApiError::Refused {
            path: "/api/files/upload".into(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "the content is text/plain".into(),
        };
        assert_eq!(err.user_message(), "The content is text/plain");
        assert!(!err.is_unavailable());
        let err = ApiError::Failed {
            path: "/api/files".into(),
            status: StatusCode::SERVICE_UNAVAILABLE,
        };
        assert!(err.is_unavailable());
        assert!(err.user_message().contains("unavailable"));
    }
}
