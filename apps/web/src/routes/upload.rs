//! The upload page, and its form post for browsers without JavaScript. With JavaScript the
//! page sends each file straight to `/api/files/upload` itself, with a progress bar.

use askama::Template;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use crate::AppState;
use crate::api::ApiClient;
use crate::error::chain;
use crate::flash::{Flash, Item, Level};
use crate::format;
use crate::views::{Layout, Section, html};

/// More files than this in one form post are refused (each is a request to the API).
pub const MAX_FILES_PER_POST: usize = 20;
/// How long the upload page waits to learn whether the API is up.
const HEALTH_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    layout: Layout,
    /// For the file input's `accept`: MIME types and their usual extensions.
    accept: String,
    /// For the JavaScript's own checks.
    allowed_types: String,
    types_label: String,
    max_size: String,
    max_bytes: u64,
    max_files: usize,
}

/// `GET /upload`.
pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let types = &app.config.allowed_types;
    let mut accept: Vec<String> = types.clone();
    accept.extend(
        types
            .iter()
            .flat_map(|t| extensions(t))
            .map(|e| format!(".{e}")),
    );
    let mut labels: Vec<String> = types.iter().map(|t| format::type_label(t)).collect();
    labels.dedup();
    let mut layout = Layout::new("Upload", Section::Upload, &headers);
    // Say before anyone picks files that they could not be stored right now.
    layout.api_down = app
        .api
        .health(HEALTH_PROBE_TIMEOUT)
        .await
        .is_err_and(|error| error.is_unavailable());
    let view = UploadPage {
        layout,
        accept: accept.join(","),
        allowed_types: types.join(","),
        types_label: join_words(&labels),
        max_size: format::size(app.config.max_file_size),
        max_bytes: app.config.max_file_size,
        max_files: MAX_FILES_PER_POST,
    };
    html(StatusCode::OK, &view)
}

fn extensions(mime: &str) -> &'static [&'static str] {
    match mime {
        "image/jpeg" => &["jpg", "jpeg"],
        "image/png" => &["png"],
        "image/gif" => &["gif"],
        "image/webp" => &["webp"],
        "application/pdf" => &["pdf"],
        "text/plain" => &["txt"],
        _ => &[],
    }
}

/// `["A", "B", "C"]` -> `A, B and C`.
fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `POST /upload`: each file of the form goes to the API as it arrives (never buffered
/// whole); the outcome of each is shown on the upload page after the redirect.
pub async fn submit(State(app): State<AppState>, mut form: Multipart) -> Response {
    let mut items = Vec::new();
    let mut forwarded = 0;
    let mut broken = false;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                tracing::info!(error = %chain(&error), "an upload form could not be read");
                broken = true;
                break;
            }
        };
        // Browsers send an empty part when no file was chosen.
        let name = match field.file_name() {
            Some(name) if field.name() == Some("file") && !name.is_empty() => name.to_owned(),
            _ => continue,
        };
        if forwarded == MAX_FILES_PER_POST {
            items.push(Item {
                name,
                ok: false,
                detail: format!("Not sent: at most {MAX_FILES_PER_POST} files at a time."),
                href: None,
            });
            continue;
        }
        forwarded += 1;
        match forward(&app.api, &name, field).await {
            Ok(item) => items.push(item),
            Err(error) => {
                tracing::info!(error = %chain(&error), "an upload was interrupted");
                items.push(Item {
                    name,
                    ok: false,
                    detail: "The upload was interrupted or too large.".into(),
                    href: None,
                });
                broken = true;
                break;
            }
        }
    }
    outcome(items, broken).redirect("/upload")
}

fn outcome(items: Vec<Item>, broken: bool) -> Flash {
    let sent = items.iter().filter(|i| i.ok).count();
    let total = items.len();
    let plural = |n: usize| if n == 1 { "file" } else { "files" };
    let flash = match (sent, total) {
        (_, 0) if broken => Flash::error("The upload was interrupted or too large."),
        (_, 0) => Flash::error("Choose at least one file to upload."),
        (s, t) if s == t => Flash::success(format!("Uploaded {s} {}.", plural(s))),
        (0, t) => Flash::error(format!("{t} {} could not be uploaded.", plural(t))),
        (s, t) => Flash::new(
            Level::Info,
            format!("Uploaded {s} of {t} files; see below for the others."),
        ),
    };
    flash.with_items(items)
}

/// Streams one form field to the API. `Err` only when the browser's form itself broke off.
async fn forward(api: &ApiClient, name: &str, field: Field<'_>) -> Result<Item, MultipartError> {
    let content_type = field
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_owned();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ));
    let upload = api.upload(name, &content_type, body);
    let pump = pump(field, sender);
    tokio::pin!(upload, pump);
    let result = tokio::select! {
        // The API answered before reading everything (a refusal): the rest of this field is
        // skipped by the multipart reader when the next field is asked for.
        result = &mut upload => result,
        pumped = &mut pump => {
            pumped?;
            upload.await
        }
    };
    Ok(match result {
        Ok(file) => Item {
            name: name.to_owned(),
            ok: true,
            detail: format::size(file.size),
            href: Some(format!("/files/{}", file.id)),
        },
        Err(error) => {
            tracing::info!(error = %chain(&error), file = name, "an upload was refused");
            Item {
                name: name.to_owned(),
                ok: false,
                detail: error.user_message(),
                href: None,
            }
        }
    })
}

/// Copies a field's chunks into the request body's channel.
async fn pump(
    mut field: Field<'_>,
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), MultipartError> {
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if sender.send(Ok(chunk)).await.is_err() {
                    // The request to the API ended; its outcome says why.
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(error) => {
                // Abort the request to the API rather than store a truncated file.
                let _ = sender
                    .send(Err(std::io::Error::other("the browser's upload broke off")))
                    .await;
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_joined_for_reading() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join_words(&words(&[])), "");
        assert_eq!(join_words(&words(&["PDF"])), "PDF");
        assert_eq!(
            join_words(&words(&["PNG", "PDF", "Text"])),
            "PNG, PDF and Text"
        );
    }

    #[test]
    fn outcomes_summarise_batches() {
        let item = |ok| Item {
            name: "a".into(),
            ok,
            detail: String::new(),
            href: None,
        };
        assert_eq!(outcome(vec![item(true)], false).level, Level::Success);
        assert_eq!(outcome(vec![item(false)], false).level, Level::Error);
        assert_eq!(
            outcome(vec![item(true), item(false)], false).level,
            Level::Info
        );
        assert!(outcome(vec![], false).message.contains("Choose"));
    }
}
