//! `POST /api/files/upload`: stream one multipart part named `file`, enforce the size limit
//! while reading, judge the type from the bytes, analyse, store content-addressed.

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::AppState;
use crate::cpu::{image_error, pdf_error, run_blocking};
use crate::db::detached;
use crate::error::AppError;
use crate::imaging::{self, ImageFailure};
use crate::names;
use crate::pdf;
use crate::sniff::{self, Family, FileType};
use crate::store::{self, FileRecord, NewFile};

/// The multipart field the original's frontend sends the file in.
const FILE_FIELD: &str = "file";

/// A fully received file part.
struct Received {
    name: String,
    declared: Option<String>,
    content: Bytes,
    sha256: [u8; 32],
}

pub async fn upload(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match store_upload(state, multipart).await {
        Ok(created) => created.into_response(),
        Err(error) => {
            // The rest of a refused body may still be on its way: this connection cannot
            // carry another request, and the client must not try.
            let unread = error.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let mut response = error.into_response();
            if unread {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

async fn store_upload(
    state: AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    // Refuse before reading a byte when nothing could be stored anyway.
    state.db.pool()?;
    tracing::debug!("receiving an upload");
    let mut multipart = multipart.map_err(|rejection| {
        AppError::bad_request(format!(
            "expected a multipart/form-data body with a `{FILE_FIELD}` part ({})",
            rejection.body_text()
        ))
    })?;
    let received = receive(&mut multipart, state.config.max_file_size).await?;
    let file_type = check_type(&received, &state.config.allowed_file_types)?;
    let metadata = analyse(&state, received.content.clone(), file_type).await?;

    let id = Uuid::new_v4();
    let size = received.content.len();
    let new = NewFile {
        id,
        filename: format!("{id}.{}", file_type.extension()),
        original_filename: received.name,
        mime_type: file_type.mime(),
        sha256: received.sha256,
        content: received.content,
        metadata,
    };
    let pool = state.db.pool()?.clone();
    // The client has sent everything: store it even if it leaves now (see `detached`).
    let row = detached("storing an upload", store::insert_file(pool, new)).await?;
    state.stats_cache.changed();
    tracing::info!(file_id = %id, size, mime = file_type.mime(), "file stored");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "success": true,
            "data": FileRecord::from(row),
            "message": "File uploaded successfully",
        })),
    ))
}

async fn receive(multipart: &mut Multipart, max_size: u64) -> Result<Received, AppError> {
    let mut received = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some(FILE_FIELD) {
            // Other form fields are allowed and ignored (drained by the next call).
            continue;
        }
        if received.is_some() {
            return Err(AppError::bad_request(format!(
                "send one file per upload (more than one `{FILE_FIELD}` part)"
            )));
        }
        match read_file(field, max_size).await {
            Ok(file) => received = Some(file),
            Err(error) => {
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    drain(multipart).await;
                }
                return Err(error);
            }
        }
    }
    let received = received.ok_or_else(|| {
        AppError::bad_request(format!(
            "no file uploaded: expected a part named `{FILE_FIELD}`"
        ))
    })?;
    if received.content.is_empty() {
        return Err(AppError::bad_request("the uploaded file is empty"));
    }
    Ok(received)
}

async fn read_file(mut field: Field<'_>, max_size: u64) -> Result<Received, AppError> {
    let raw_name = field.file_name().unwrap_or_default().to_owned();
    let name = names::sanitize(&raw_name).map_err(|e| AppError::bad_request(e.to_string()))?;
    let declared = field.content_type().map(str::to_owned);
    let mut content = Vec::new();
    let mut hasher = Sha256::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if (content.len() + chunk.len()) as u64 > max_size {
            drop(content);
            while let Ok(Some(_)) = field.chunk().await {}
            return Err(too_large(max_size));
        }
        hasher.update(&chunk);
        content.extend_from_slice(&chunk);
    }
    Ok(Received {
        name,
        declared,
        content: Bytes::from(content),
        sha256: hasher.finalize().into(),
    })
}

/// Read and discard the rest of a refused body, so that the client, still sending, gets to
/// read the 413 instead of a reset connection. The route's body limit (the file limit plus
/// 1 MiB) bounds how much is read; past it the connection is closed.
async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

fn too_large(max_size: u64) -> AppError {
    AppError::client(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the file is larger than the limit of {max_size} bytes"),
    )
    .with_details(json!({ "maxFileSize": max_size }))
}

fn multipart_error(error: MultipartError) -> AppError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the upload limit",
        )
    } else {
        tracing::info!(error = %error.body_text(), "malformed multipart body");
        AppError::bad_request("the multipart/form-data body is malformed or incomplete")
    }
}

/// The sniffed type, if it is allowed and does not contradict the declared one.
fn check_type(received: &Received, allowed: &[FileType]) -> Result<FileType, AppError> {
    let allowed_list = || {
        allowed
            .iter()
            .map(|t| t.mime())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(found) = sniff::sniff(&received.content) else {
        return Err(AppError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the content is not a recognised file type (allowed: {})",
                allowed_list()
            ),
        ));
    };
    if !sniff::declared_agrees(received.declared.as_deref(), found) {
        return Err(AppError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the file was declared as {} but its content is {}",
                crate::extract::clip(received.declared.as_deref().unwrap_or_default()),
                found.mime()
            ),
        ));
    }
    if !allowed.contains(&found) {
        return Err(AppError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the content is {}, which is not allowed (allowed: {})",
                found.mime(),
                allowed_list()
            ),
        ));
    }
    Ok(found)
}

/// Metadata, and proof that the file is what it claims: images decode, PDFs parse.
async fn analyse(state: &AppState, content: Bytes, file_type: FileType) -> Result<Value, AppError> {
    match file_type.family() {
        Family::Text => Ok(json!({
            "type": "generic",
            "fileSize": content.len(),
            "detectedMimeType": file_type.mime(),
            "extension": file_type.extension(),
        })),
        Family::Image => run_blocking(state, move || {
            let decoded = imaging::decode(&content, file_type)?;
            Ok::<_, ImageFailure>(imaging::metadata(&content, file_type, &decoded))
        })
        .await?
        .map_err(image_error),
        Family::Pdf => run_blocking(state, move || pdf::metadata(&content))
            .await?
            .map_err(pdf_error),
    }
}
