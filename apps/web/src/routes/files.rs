//! The file list (`/`), a file's page, and list thumbnails.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::file_id;
use crate::AppState;
use crate::api::FileRecord;
use crate::error::{PageError, chain};
use crate::format::{self, Kind};
use crate::views::{Layout, Section, html};

/// Rows per page of the file list.
pub const PER_PAGE: u32 = 20;
/// Thumbnails are drawn at twice their CSS size for sharp high-density screens.
const THUMBNAIL_PX: u32 = 96;

/// A file as a row of the list (and the head of its own page).
pub struct FileRow {
    pub id: String,
    pub href: String,
    pub name: String,
    pub type_label: String,
    pub kind: &'static str,
    pub is_image: bool,
    pub thumbnail: String,
    pub dimensions: Option<String>,
    pub size: String,
    pub date: String,
    pub date_iso: String,
}

impl FileRow {
    pub fn new(file: &FileRecord) -> Self {
        let kind = Kind::of(&file.mime_type);
        let dimensions = match (dimension(file, "width"), dimension(file, "height")) {
            (Some(w), Some(h)) => Some(format!("{w} × {h}")),
            _ => None,
        };
        Self {
            id: file.id.to_string(),
            href: format!("/files/{}", file.id),
            name: file.original_filename.clone(),
            type_label: format::type_label(&file.mime_type),
            kind: kind.slug(),
            is_image: kind == Kind::Image,
            thumbnail: format!("/files/{}/thumbnail", file.id),
            dimensions,
            size: format::size(file.size),
            date: format::date(&file.created_at),
            date_iso: file.created_at.clone(),
        }
    }
}

/// A whole-number dimension (`width`, `height`) from the API's metadata, when it has one.
fn dimension(file: &FileRecord, key: &str) -> Option<u64> {
    file.metadata.get(key).and_then(serde_json::Value::as_u64)
}

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    layout: Layout,
    rows: Vec<FileRow>,
    page: u64,
    previous: Option<String>,
    next: Option<String>,
    /// Set when the list could not be loaded; the page still renders (it is the health check).
    load_error: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<String>,
}

/// `GET /`: the newest files, a page at a time. Always 200: the load balancer's health check
/// asks for `/`, and the frontend is healthy even when the API is not.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = query
        .page
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let mut layout = Layout::new("Files", Section::Files, &headers);
    let offset = (page - 1) * u64::from(PER_PAGE);
    let (rows, has_more, load_error) = match app
        .api
        .list_files(PER_PAGE, offset, app.config.home_api_timeout)
        .await
    {
        Ok(listing) => (
            listing.files.iter().map(FileRow::new).collect(),
            listing.has_more,
            None,
        ),
        Err(error) => {
            tracing::warn!(error = %chain(&error), "the file list could not be loaded");
            layout.api_down = error.is_unavailable();
            (Vec::new(), false, Some(error.user_message()))
        }
    };
    let view = FilesPage {
        layout,
        rows,
        page,
        previous: (page > 1).then(|| page_href(page - 1)),
        next: has_more.then(|| page_href(page + 1)),
        load_error,
    };
    html(StatusCode::OK, &view)
}

fn page_href(page: u64) -> String {
    if page == 1 {
        "/".into()
    } else {
        format!("/?page={page}")
    }
}

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage {
    layout: Layout,
    file: FileRow,
    mime: String,
    metadata: Vec<(String, String)>,
    can_extract_text: bool,
    download: String,
    width: u64,
    height: u64,
}

/// `GET /files/{id}`: what is known about one file, and what can be done with it.
pub async fn detail(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = file_id(&id)?;
    let file = app.api.file(id).await?;
    let row = FileRow::new(&file);
    let metadata = metadata_rows(&file.metadata);
    let view = DetailPage {
        layout: Layout::new(file.original_filename.clone(), Section::Files, &headers),
        mime: file.mime_type.clone(),
        metadata,
        can_extract_text: Kind::of(&file.mime_type) == Kind::Pdf,
        download: format!("/api/files/{id}/download"),
        width: dimension(&file, "width").unwrap_or(0),
        height: dimension(&file, "height").unwrap_or(0),
        file: row,
    };
    Ok(html(StatusCode::OK, &view))
}

/// The API's metadata as label/value rows: the most telling first, then the rest by name.
/// `type` and `fileSize` are left out: the page already shows the type and the size.
fn metadata_rows(metadata: &serde_json::Value) -> Vec<(String, String)> {
    const FIRST: [&str; 8] = [
        "width",
        "height",
        "format",
        "pages",
        "colorSpace",
        "channels",
        "hasAlpha",
        "density",
    ];
    let serde_json::Value::Object(entries) = metadata else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = entries
        .keys()
        .filter(|k| !matches!(k.as_str(), "type" | "fileSize"))
        .collect();
    keys.sort_by_key(|k| {
        (
            FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()),
            k.as_str(),
        )
    });
    keys.into_iter()
        .map(|key| {
            (
                format::metadata_label(key),
                format::metadata_value(key, &entries[key.as_str()]),
            )
        })
        .collect()
}

/// `GET /files/{id}/thumbnail`: a small image for the list, made by the API's resize. The
/// bytes behind an id never change, so browsers may keep it for a long time.
pub async fn thumbnail(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return placeholder();
    };
    let params = serde_json::json!({
        "width": THUMBNAIL_PX, "height": THUMBNAIL_PX, "fit": "cover"
    });
    match app.api.image_operation(id, "resize", &params).await {
        Ok(response) => {
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=86400"),
                    ),
                ],
                Body::from_stream(response.bytes_stream()),
            )
                .into_response()
        }
        Err(error) => {
            tracing::info!(error = %chain(&error), "no thumbnail");
            placeholder()
        }
    }
}

/// A neutral tile where a thumbnail could not be made (not cached: it may work later).
fn placeholder() -> Response {
    const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><rect width="48" height="48" rx="8" fill="#e2e8f0"/><path d="M12 34l8-10 6 7 4-5 6 8z" fill="#94a3b8"/></svg>"##;
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        SVG,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_puts_dimensions_first_and_skips_what_the_page_shows() {
        let rows = metadata_rows(&serde_json::json!({
            "type": "image", "fileSize": 10, "hasAlpha": true, "height": 200, "width": 320,
            "zebra": "z", "format": "png"
        }));
        let labels: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["Width", "Height", "Format", "Transparency", "Zebra"]
        );
        assert!(metadata_rows(&serde_json::json!(null)).is_empty());
    }
}
