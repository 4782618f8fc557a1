//! A small in-memory File Analyzer API on 127.0.0.1:0, with the documented envelope, for
//! testing pages without PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use uuid::Uuid;

pub const MAX_FILE_SIZE: usize = 10 * 1024 * 1024;

#[derive(Clone)]
pub struct Stored {
    pub record: Value,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
pub struct FakeState {
    /// Oldest first.
    pub files: Vec<Stored>,
    /// Every request's method and path, in order.
    pub requests: Vec<String>,
    /// While this holds `false`, the statistics call waits (a request kept in flight).
    pub stats_gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// The same for the file list.
    pub list_gate: Option<tokio::sync::watch::Receiver<bool>>,
}

#[derive(Clone)]
pub struct FakeApi {
    pub base: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let app = Router::new()
            .route(
                "/api/health",
                get(|| async { Json(json!({"status": "ok"})) }),
            )
            .route("/api/files", get(list))
            .route("/api/files/upload", post(upload))
            .route("/api/files/stats/summary", get(stats))
            .route("/api/files/duplicates", get(duplicates))
            .route("/api/files/batch/delete", post(batch_delete))
            .route("/api/files/{id}", get(one))
            .route("/api/files/{id}/extract-text", get(extract_text))
            .route("/api/files/{id}/download", get(download))
            .route("/api/files/{id}/{operation}", post(image_operation))
            .layer(DefaultBodyLimit::max(MAX_FILE_SIZE * 2))
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeApi { base, state }
    }

    /// Stores a file directly; returns its id.
    pub fn add(&self, name: &str, mime: &str, bytes: Vec<u8>) -> Uuid {
        let mut state = self.state.lock().unwrap();
        let id = Uuid::new_v4();
        let n = state.files.len() as i64;
        let created = chrono::DateTime::from_timestamp(1_790_000_000 + n * 60, 0).unwrap();
        let metadata = match image::load_from_memory(&bytes) {
            Ok(img) if mime.starts_with("image/") => json!({
                "type": "image", "width": img.width(), "height": img.height(),
                "format": mime.trim_start_matches("image/"), "hasAlpha": false, "fileSize": bytes.len()
            }),
            _ if mime == "application/pdf" => json!({"type": "pdf", "fileSize": bytes.len()}),
            _ => json!({"type": "generic", "fileSize": bytes.len()}),
        };
        state.files.push(Stored {
            record: json!({
                "id": id, "filename": format!("{id}.bin"), "original_filename": name,
                "mime_type": mime, "size": bytes.len(), "file_path": format!("uploads/{id}"),
                "metadata": metadata, "created_at": created.to_rfc3339(),
                "updated_at": created.to_rfc3339(),
            }),
            bytes,
        });
        id
    }

    pub fn ids(&self) -> Vec<Uuid> {
        let state = self.state.lock().unwrap();
        state.files.iter().map(|f| id_of(&f.record)).collect()
    }

    pub fn bytes(&self, id: Uuid) -> Option<Vec<u8>> {
        let state = self.state.lock().unwrap();
        state
            .files
            .iter()
            .find(|f| id_of(&f.record) == id)
            .map(|f| f.bytes.clone())
    }

    /// Makes the statistics call wait until the returned sender says `true`.
    pub fn hold_stats(&self) -> tokio::sync::watch::Sender<bool> {
        let (open, gate) = tokio::sync::watch::channel(false);
        self.state.lock().unwrap().stats_gate = Some(gate);
        open
    }

    /// Makes the file list call wait until the returned sender says `true`.
    pub fn hold_list(&self) -> tokio::sync::watch::Sender<bool> {
        let (open, gate) = tokio::sync::watch::channel(false);
        self.state.lock().unwrap().list_gate = Some(gate);
        open
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

type Shared = State<Arc<Mutex<FakeState>>>;

async fn record(
    State(state): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state
        .lock()
        .unwrap()
        .requests
        .push(format!("{} {}", request.method(), request.uri().path()));
    next.run(request).await
}

fn id_of(record: &Value) -> Uuid {
    record["id"].as_str().unwrap().parse().unwrap()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "error": {"message": message}})),
    )
        .into_response()
}

/// A file by id, or the refusal to send (status and message).
fn find(state: &FakeState, id: &str) -> Result<Stored, (StatusCode, &'static str)> {
    let Ok(id) = id.parse::<Uuid>() else {
        return Err((StatusCode::BAD_REQUEST, "Invalid file id"));
    };
    state
        .files
        .iter()
        .find(|f| id_of(&f.record) == id)
        .cloned()
        .ok_or((StatusCode::NOT_FOUND, "File not found"))
}

async fn list(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let gate = state.lock().unwrap().list_gate.clone();
    if let Some(mut gate) = gate {
        let _ = gate.wait_for(|open| *open).await;
    }
    let state = state.lock().unwrap();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let offset: usize = q.get("offset").and_then(|l| l.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = state
        .files
        .iter()
        .rev()
        .skip(offset)
        .take(limit)
        .map(|f| f.record.clone())
        .collect();
    Json(json!({"success": true, "data": page, "count": state.files.len()}))
}

async fn one(State(state): Shared, Path(id): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match find(&state, &id) {
        Ok(file) => Json(json!({"success": true, "data": file.record})).into_response(),
        Err((status, message)) => refuse(status, message),
    }
}

async fn upload(State(state): Shared, mut form: Multipart) -> Response {
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let mime = field.content_type().unwrap_or("").to_owned();
        let allowed = [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "text/plain",
        ];
        if !allowed.contains(&mime.as_str()) {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("File type {mime} is not allowed"),
            );
        }
        // Like the real API, refuse as soon as the limit is passed, without reading the rest.
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > MAX_FILE_SIZE {
                        return refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "File too large (max 10 MiB)",
                        );
                    }
                }
                Ok(None) => break,
                Err(_) => return refuse(StatusCode::BAD_REQUEST, "Upload interrupted"),
            }
        }
        let api = FakeApi {
            base: String::new(),
            state: state.clone(),
        };
        let id = api.add(&name, &mime, bytes);
        let record = find(&state.lock().unwrap(), &id.to_string())
            .ok()
            .unwrap()
            .record;
        return (
            StatusCode::CREATED,
            Json(json!({"success": true, "data": record, "message": "File uploaded"})),
        )
            .into_response();
    }
    refuse(StatusCode::BAD_REQUEST, "No file in the request")
}

async fn stats(State(state): Shared) -> Json<Value> {
    let gate = state.lock().unwrap().stats_gate.clone();
    if let Some(mut gate) = gate {
        let _ = gate.wait_for(|open| *open).await;
    }
    let state = state.lock().unwrap();
    let sizes: Vec<u64> = state
        .files
        .iter()
        .map(|f| f.record["size"].as_u64().unwrap())
        .collect();
    let of_kind = |prefix: &str| -> Vec<u64> {
        state
            .files
            .iter()
            .filter(|f| f.record["mime_type"].as_str().unwrap().starts_with(prefix))
            .map(|f| f.record["size"].as_u64().unwrap())
            .collect()
    };
    let count = |prefix: &str| of_kind(prefix).len();
    let bytes = |prefix: &str| of_kind(prefix).iter().sum::<u64>();
    let known = count("image/") + count("application/pdf") + count("text/");
    let known_bytes = bytes("image/") + bytes("application/pdf") + bytes("text/");
    let total: u64 = sizes.iter().sum();
    Json(json!({"success": true, "data": {
        "total_files": sizes.len(), "total_size": total,
        "image_count": count("image/"), "pdf_count": count("application/pdf"),
        "text_count": count("text/"), "other_count": sizes.len() - known,
        "image_size": bytes("image/"), "pdf_size": bytes("application/pdf"),
        "text_size": bytes("text/"), "other_size": total - known_bytes,
        "avg_file_size": if sizes.is_empty() { 0 } else { total / sizes.len() as u64 },
        "max_file_size": sizes.iter().max().copied().unwrap_or(0),
        "min_file_size": sizes.iter().min().copied().unwrap_or(0),
    }}))
}

async fn duplicates(State(state): Shared) -> Json<Value> {
    let state = state.lock().unwrap();
    let mut groups: Vec<(Vec<u8>, Vec<&Stored>)> = Vec::new();
    for file in &state.files {
        match groups.iter_mut().find(|(bytes, _)| *bytes == file.bytes) {
            Some((_, members)) => members.push(file),
            None => groups.push((file.bytes.clone(), vec![file])),
        }
    }
    let data: Vec<Value> = groups
        .iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(_, members)| {
            json!({
                "original_filename": members[0].record["original_filename"],
                "size": members[0].record["size"],
                "mime_type": members[0].record["mime_type"],
                "duplicate_count": members.len(),
                "file_ids": members.iter().map(|m| m.record["id"].clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({"success": true, "data": data}))
}

async fn batch_delete(State(state): Shared, Json(body): Json<Value>) -> Response {
    let mut state = state.lock().unwrap();
    let ids: Vec<Uuid> = match body["ids"].as_array() {
        Some(ids) => ids
            .iter()
            .filter_map(|v| v.as_str()?.parse().ok())
            .collect(),
        None => return refuse(StatusCode::BAD_REQUEST, "ids must be an array"),
    };
    let before = state.files.len();
    state.files.retain(|f| !ids.contains(&id_of(&f.record)));
    let deleted = before - state.files.len();
    Json(json!({"success": true, "message": format!("Deleted {deleted} file(s)"), "deletedCount": deleted}))
        .into_response()
}

async fn download(State(state): Shared, Path(id): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match find(&state, &id) {
        Ok(file) => (
            [
                (
                    header::CONTENT_TYPE,
                    file.record["mime_type"].as_str().unwrap().to_owned(),
                ),
                (header::CONTENT_DISPOSITION, "attachment".to_owned()),
            ],
            file.bytes,
        )
            .into_response(),
        Err((status, message)) => refuse(status, message),
    }
}

async fn extract_text(State(state): Shared, Path(id): Path<String>) -> Response {
    let state = state.lock().unwrap();
    match find(&state, &id) {
        Ok(file) if file.record["mime_type"] == "application/pdf" => {
            // The text of a `(...) Tj` operator if there is one, else a fixed text.
            let raw = String::from_utf8_lossy(&file.bytes);
            let text = raw
                .split_once('(')
                .and_then(|(_, rest)| rest.split_once(") Tj"))
                .map(|(text, _)| text.to_owned())
                .unwrap_or_else(|| "Hello from the fake PDF\nSecond line".to_owned());
            Json(json!({
                "success": true,
                "data": {"text": text, "filename": file.record["original_filename"]}
            }))
            .into_response()
        }
        Ok(_) => refuse(
            StatusCode::BAD_REQUEST,
            "Text extraction is only for PDF files",
        ),
        Err((status, message)) => refuse(status, message),
    }
}

async fn image_operation(
    State(state): Shared,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let file = match find(&state.lock().unwrap(), &id) {
        Ok(file) => file,
        Err((status, message)) => return refuse(status, message),
    };
    let Ok(params) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "Invalid JSON");
    };
    let Ok(image) = image::load_from_memory(&file.bytes) else {
        return refuse(StatusCode::BAD_REQUEST, "Not an image");
    };
    let dim = |key: &str, default: u32| params[key].as_u64().map(|v| v as u32).unwrap_or(default);
    let result = match operation.as_str() {
        "resize" => {
            let w = dim("width", image.width()).min(image.width());
            let h = dim("height", image.height()).min(image.height());
            image.resize(w, h, image::imageops::FilterType::Triangle)
        }
        "crop" => image.crop_imm(dim("x", 0), dim("y", 0), dim("width", 1), dim("height", 1)),
        "convert" | "compress" => image,
        _ => return refuse(StatusCode::NOT_FOUND, "No such operation"),
    };
    let mut png = Vec::new();
    result
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let name = file.record["original_filename"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        [
            (header::CONTENT_TYPE, "image/png".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{operation}d_{name}\""),
            ),
        ],
        png,
    )
        .into_response()
}

/// A PNG of the given size.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 160])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}
