//! Deleting files: a confirmation page (`GET /files/delete?ids=...`), then the deletion
//! (`POST /files/delete`). Both the list's batch delete and the duplicates page use it.

use std::collections::HashSet;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use uuid::Uuid;

use crate::AppState;
use crate::api::ApiError;
use crate::error::{PageError, chain};
use crate::flash::{Flash, Level};
use crate::format;
use crate::views::{Layout, Section, html};

/// The most files one confirmation lists (and one batch deletes).
const MAX_BATCH: usize = 200;

/// What a delete form sends: `ids` (repeated) and where to go afterwards.
struct Selection {
    ids: Vec<Uuid>,
    back: String,
}

impl Selection {
    fn parse(form: &[u8]) -> Self {
        let mut ids = Vec::new();
        // A set, not `ids.contains`: a form may repeat tens of thousands of ids before the
        // batch limit refuses it, and a quadratic scan would hold a worker thread meanwhile.
        let mut seen = HashSet::new();
        let mut back = "/".to_owned();
        for (key, value) in form_urlencoded::parse(form) {
            match key.as_ref() {
                "ids" => {
                    // Ids that are not UUIDs cannot name a file: nothing to delete.
                    if let Ok(id) = Uuid::parse_str(value.trim())
                        && seen.insert(id)
                    {
                        ids.push(id);
                    }
                }
                "back" if value.starts_with('/') && !value.starts_with("//") => {
                    back = value.into_owned();
                }
                _ => {}
            }
        }
        Self { ids, back }
    }

    /// Why this selection cannot be deleted as it is (none, or more than a batch), if so.
    fn refusal(&self) -> Option<Flash> {
        if self.ids.is_empty() {
            Some(Flash::error("Select at least one file to delete."))
        } else if self.ids.len() > MAX_BATCH {
            Some(Flash::error(format!(
                "At most {MAX_BATCH} files can be deleted at a time."
            )))
        } else {
            None
        }
    }
}

struct Row {
    id: String,
    name: String,
    size: String,
    type_label: String,
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmPage {
    layout: Layout,
    rows: Vec<Row>,
    total_size: String,
    back: String,
}

/// `GET /files/delete?ids=...&back=...`: lists what would be deleted and asks to confirm.
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let selection = Selection::parse(query.unwrap_or_default().as_bytes());
    if let Some(refusal) = selection.refusal() {
        return Ok(refusal.redirect(&selection.back));
    }
    let lookups: Vec<_> = futures_util::stream::iter(selection.ids.iter().copied())
        .map(|id| {
            let api = app.api.clone();
            async move { api.file(id).await }
        })
        .buffered(8)
        .collect()
        .await;
    let mut files = Vec::new();
    for lookup in lookups {
        match lookup {
            Ok(file) => files.push(file),
            // Already gone: nothing to confirm for this one.
            Err(ApiError::Refused { status, .. }) if status == StatusCode::NOT_FOUND => {}
            Err(error) => return Err(error.into()),
        }
    }
    if files.is_empty() {
        return Ok(
            Flash::new(Level::Info, "Those files were already deleted.").redirect(&selection.back)
        );
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let noun = if files.len() == 1 { "file" } else { "files" };
    let view = ConfirmPage {
        layout: Layout::new(
            format!("Delete {} {noun}?", files.len()),
            Section::None,
            &headers,
        ),
        rows: files
            .iter()
            .map(|f| Row {
                id: f.id.to_string(),
                name: f.original_filename.clone(),
                size: format::size(f.size),
                type_label: format::type_label(&f.mime_type),
            })
            .collect(),
        total_size: format::size(total),
        back: selection.back,
    };
    Ok(html(StatusCode::OK, &view))
}

/// `POST /files/delete`: deletes the confirmed files, all or none (the API's batch delete
/// is atomic), and goes back with the outcome.
pub async fn delete(State(app): State<AppState>, form: Bytes) -> Response {
    let selection = Selection::parse(&form);
    // A deleted file's own page no longer exists: go to the list instead.
    let back = if selection.back.starts_with("/files/") {
        "/".to_owned()
    } else {
        selection.back.clone()
    };
    if let Some(refusal) = selection.refusal() {
        return refusal.redirect(&back);
    }
    match app.api.delete_files(&selection.ids).await {
        Ok(deleted) => {
            let noun = if deleted == 1 { "file" } else { "files" };
            Flash::success(format!("Deleted {deleted} {noun}.")).redirect(&back)
        }
        Err(error) => {
            tracing::warn!(error = %chain(&error), "a batch delete failed");
            Flash::error(format!("Nothing was deleted. {}", error.user_message()))
                .redirect(&selection.back)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_keep_valid_unique_ids_and_local_back_links() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let form = format!("ids={a}&ids=nope&ids={b}&ids={a}&back=%2Fduplicates");
        let selection = Selection::parse(form.as_bytes());
        assert_eq!(selection.ids, vec![a, b]);
        assert_eq!(selection.back, "/duplicates");
        let selection = Selection::parse(b"back=https%3A%2F%2Fevil.example");
        assert!(selection.ids.is_empty());
        assert_eq!(selection.back, "/");
    }
}
