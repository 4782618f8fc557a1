//! Static files compiled into the binary, served under URLs that carry a hash of their content
//! so browsers may cache them for a year: a new build changes the URL, never the content
//! behind an old one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// The file's name without the hash (`app.css`).
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// `/static/app.<hash>.css`.
    url: String,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/app.css").as_slice(),
        ),
        (
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/app.js").as_slice(),
        ),
        (
            "favicon.svg",
            "image/svg+xml",
            include_bytes!("../assets/favicon.svg").as_slice(),
        ),
    ]
    .into_iter()
    .map(|(name, content_type, bytes)| Asset {
        name,
        content_type,
        bytes,
        url: hashed_url(name, bytes),
    })
    .collect()
});

fn hashed_url(name: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("/static/{stem}.{}.{extension}", &digest[..12])
}

/// The cache-busting URL of an embedded asset (`app.css` -> `/static/app.1a2b3c4d5e6f.css`).
pub fn url(name: &str) -> &'static str {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.url.as_str())
        .unwrap_or("/static/missing")
}

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let requested = format!("/static/{file}");
    let Some(asset) = ASSETS
        .iter()
        .find(|a| a.url == requested || strip_hash(&file).is_some_and(|plain| plain == a.name))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // A page from an older or newer build may ask for another hash during a rolling deploy:
    // give it today's content, but do not let anything cache that answer.
    let cache = if asset.url == requested {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

/// `app.1a2b3c4d5e6f.css` -> `app.css`.
fn strip_hash(file: &str) -> Option<String> {
    let (rest, extension) = file.rsplit_once('.')?;
    let (stem, hash) = rest.rsplit_once('.')?;
    hash.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| format!("{stem}.{extension}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_a_content_hash() {
        let css = url("app.css");
        assert!(
            css.starts_with("/static/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/app.".len() + 12 + ".css".len());
        assert_ne!(url("app.css"), url("app.js"));
        assert_eq!(hashed_url("a.css", b"x"), hashed_url("a.css", b"x"));
        assert_ne!(hashed_url("a.css", b"x"), hashed_url("a.css", b"y"));
    }

    #[test]
    fn hashes_are_stripped_only_when_hex() {
        assert_eq!(strip_hash("app.0123abcd.css").as_deref(), Some("app.css"));
        assert_eq!(strip_hash("app.css"), None);
        assert_eq!(strip_hash("app.zz.css"), None);
    }
}
