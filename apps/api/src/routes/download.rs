//! `GET /api/files/:id/download`: the bytes, with ETag (the content hash), conditional
//! requests (304) and single byte ranges (206 / 416).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::AppError;
use crate::extract::file_id;
use crate::names;
use crate::routes::files::find;
use crate::store;

pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let id = file_id(&id)?;
    let row = find(&state, id).await?;
    let etag = format!("\"{}\"", hex::encode(&row.sha256));
    let size = u64::try_from(row.size).unwrap_or(0);

    let mut common = HeaderMap::new();
    common.insert(header::ETAG, header_value(&etag));
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Revalidate every time: the ETag makes that a cheap 304.
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );

    if let Some(if_none_match) = headers.get(header::IF_NONE_MATCH)
        && etag_matches(if_none_match.to_str().unwrap_or_default(), &etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }

    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_holds(&headers, &etag));
    let range = match range_header.map(|r| parse_range(r, size)) {
        None | Some(RangeRequest::Ignore) => None,
        Some(RangeRequest::Unsatisfiable) => {
            common.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            let mut response = AppError::client(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range is outside the file's {size} bytes"),
            )
            .into_response();
            response.headers_mut().extend(common);
            return Ok(response);
        }
        Some(RangeRequest::Bytes { start, end }) => Some((start, end)),
    };

    let pool = state.db.pool()?;
    let content = store::read_blob(pool, &row.sha256, range.map(|(s, e)| (s, e - s + 1)))
        .await
        .map_err(|e| AppError::db("reading file contents", e))?
        .ok_or_else(|| AppError::not_found(format!("file {id} not found")))?;

    let mime = if row.mime_type.starts_with("text/") {
        format!("{}; charset=utf-8", row.mime_type)
    } else {
        row.mime_type.clone()
    };
    common.insert(header::CONTENT_TYPE, header_value(&mime));
    common.insert(
        header::CONTENT_DISPOSITION,
        header_value(&names::content_disposition(&row.original_filename)),
    );
    let status = match range {
        Some((start, end)) => {
            common.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{size}")),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    Ok((status, common, Body::from(content)).into_response())
}

fn header_value(text: &str) -> HeaderValue {
    // Everything put here is ASCII we built ourselves (names are percent-encoded).
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `If-None-Match: "a", W/"b"` or `*` against our strong ETag (weak comparison, RFC 9110).
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

/// `If-Range` names the representation the client has; a range applies only to it.
fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(value) => value.trim() == etag,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Inclusive byte positions.
    Bytes { start: u64, end: u64 },
    /// Syntactically valid but outside the file: 416.
    Unsatisfiable,
    /// Not something we serve (other units, several ranges, garbage): send the whole file.
    Ignore,
}

fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if size > 0 => RangeRequest::Bytes {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Ignore,
        },
        // bytes=N-: from N to the end.
        (false, true) => match parse(first) {
            Some(start) if start < size => RangeRequest::Bytes {
                start,
                end: size - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Ignore,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start <= end => {
                if start < size {
                    RangeRequest::Bytes {
                        start,
                        end: end.min(size - 1),
                    }
                } else {
                    RangeRequest::Unsatisfiable
                }
            }
            _ => RangeRequest::Ignore,
        },
        (true, true) => RangeRequest::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-9", 100), Bytes { start: 0, end: 9 });
        assert_eq!(parse_range("bytes=90-", 100), Bytes { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-10", 100), Bytes { start: 90, end: 99 });
        assert_eq!(
            parse_range("bytes=95-200", 100),
            Bytes { start: 95, end: 99 }
        );
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ignore);
        assert_eq!(parse_range("items=0-1", 100), Ignore);
        assert_eq!(parse_range("bytes=5-2", 100), Ignore);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
