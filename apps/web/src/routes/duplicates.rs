//! Files with the same content, and a way to delete the extra copies.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use uuid::Uuid;

use crate::AppState;
use crate::api::FileRecord;
use crate::error::PageError;
use crate::format;
use crate::views::{Layout, Section, html};

/// Copies looked up for their dates; beyond this, copies are listed by id only.
const MAX_LOOKUPS: usize = 200;

struct Copy {
    id: String,
    href: String,
    date: String,
    /// Every copy but the oldest is selected for deletion.
    extra: bool,
}

struct Group {
    name: String,
    size: String,
    type_label: String,
    copies: Vec<Copy>,
}

#[derive(Template)]
#[template(path = "duplicates.html")]
struct DuplicatesPage {
    layout: Layout,
    groups: Vec<Group>,
    extra_count: usize,
    extra_size: String,
}

/// `GET /duplicates`.
pub async fn page(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let groups = app.api.duplicates().await?;
    let ids: Vec<Uuid> = groups
        .iter()
        .flat_map(|g| g.file_ids.iter().copied())
        .take(MAX_LOOKUPS)
        .collect();
    // The dates decide which copy is the original; a copy deleted meanwhile is just skipped.
    let records: Vec<FileRecord> = futures_util::stream::iter(ids)
        .map(|id| {
            let api = app.api.clone();
            async move { api.file(id).await.ok() }
        })
        .buffer_unordered(8)
        .filter_map(|r| async move { r })
        .collect()
        .await;

    let mut extra_count = 0;
    let mut extra_bytes = 0;
    let views = groups
        .iter()
        .map(|group| {
            let mut copies: Vec<(Uuid, String)> = group
                .file_ids
                .iter()
                .map(|id| {
                    let created = records
                        .iter()
                        .find(|r| r.id == *id)
                        .map(|r| r.created_at.clone())
                        .unwrap_or_default();
                    (*id, created)
                })
                .collect();
            // Oldest first; unknown dates last.
            copies.sort_by_key(|(_, created)| {
                let at = chrono::DateTime::parse_from_rfc3339(created).ok();
                (at.is_none(), at)
            });
            extra_count += copies.len().saturating_sub(1);
            extra_bytes += group.size * copies.len().saturating_sub(1) as u64;
            Group {
                name: group.original_filename.clone(),
                size: format::size(group.size),
                type_label: format::type_label(&group.mime_type),
                copies: copies
                    .iter()
                    .enumerate()
                    .map(|(i, (id, created))| Copy {
                        id: id.to_string(),
                        href: format!("/files/{id}"),
                        date: if created.is_empty() {
                            "date unknown".into()
                        } else {
                            format::date(created)
                        },
                        extra: i > 0,
                    })
                    .collect(),
            }
        })
        .collect();
    let view = DuplicatesPage {
        layout: Layout::new("Duplicates", Section::Duplicates, &headers),
        groups: views,
        extra_count,
        extra_size: format::size(extra_bytes),
    };
    Ok(html(StatusCode::OK, &view))
}
