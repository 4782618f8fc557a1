//! One-shot messages across a Post/Redirect/Get: the POST handler stores the outcome in a
//! short-lived cookie and redirects; the next page shows it and the response deletes it.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

const COOKIE: &str = "flash";
/// Browsers keep at least 4 KiB per cookie; stay well below with the encoding's overhead.
const MAX_ENCODED: usize = 3500;
/// What a cookie value may not contain (RFC 6265 `cookie-octet`), plus `%` itself.
const COOKIE_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%')
    .add(0x7f);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Success,
    Error,
    Info,
}

/// The outcome for one file of a batch (an upload of several files).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// Where the file can be seen, when it exists.
    #[serde(default)]
    pub href: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub level: Level,
    pub message: String,
    #[serde(default)]
    pub items: Vec<Item>,
}

impl Flash {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            items: Vec::new(),
        }
    }

    pub fn success(message: impl Into<String>) -> Self {
        Self::new(Level::Success, message)
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Level::Error, message)
    }

    pub fn with_items(mut self, items: Vec<Item>) -> Self {
        self.items = items;
        self
    }

    pub fn level_class(&self) -> &'static str {
        match self.level {
            Level::Success => "success",
            Level::Error => "error",
            Level::Info => "info",
        }
    }

    /// Whether the message should interrupt a screen reader (errors) or wait (the rest).
    pub fn role(&self) -> &'static str {
        match self.level {
            Level::Error => "alert",
            Level::Success | Level::Info => "status",
        }
    }

    /// A `303 See Other` to `location` carrying this message.
    pub fn redirect(self, location: &str) -> Response {
        let mut response = (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, safe_location(location))],
        )
            .into_response();
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax",
            self.encode()
        )) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    fn encode(mut self) -> String {
        loop {
            let json = serde_json::to_string(&self).unwrap_or_default();
            let encoded = utf8_percent_encode(&json, COOKIE_UNSAFE).to_string();
            if encoded.len() <= MAX_ENCODED || (self.items.is_empty() && self.message.len() < 64) {
                return encoded;
            }
            // Too long for a cookie: keep the summary and the failures, drop successes first.
            if let Some(last_ok) = self.items.iter().rposition(|item| item.ok) {
                self.items.remove(last_ok);
            } else if self.items.pop().is_none() {
                self.message.truncate(self.message.len() / 2);
                while !self.message.is_char_boundary(self.message.len()) {
                    self.message.pop();
                }
            }
        }
    }

    /// The message the request carries, if any.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let raw = cookie_value(headers)?;
        let json = percent_decode_str(raw).decode_utf8().ok()?;
        serde_json::from_str(&json).ok()
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}

/// Only paths on this site: an open redirect through `back=` would let other sites borrow our
/// name for phishing.
pub fn safe_location(location: &str) -> HeaderValue {
    let local = location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        // Any control character: browsers drop tabs and newlines, so "/\t/x" would be "//x".
        && !location.contains(|c: char| c.is_control());
    let location = if local { location } else { "/" };
    HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"))
}

/// Deletes the cookie once a page has shown it.
pub async fn clear_after_display(request: Request, next: Next) -> Response {
    let had_flash = cookie_value(request.headers()).is_some();
    let mut response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let sets_flash = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(COOKIE.as_bytes()));
    if had_flash && is_page && !sets_flash {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(flash: Flash) -> Flash {
        let response = flash.redirect("/upload");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        let pair = cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        Flash::from_headers(&headers).expect("flash decodes")
    }

    #[test]
    fn survives_the_cookie_round_trip_with_unicode() {
        let flash = Flash::success("Uploaded 1 file").with_items(vec![Item {
            name: "résumé; \"x\".pdf".into(),
            ok: true,
            detail: "42 KiB".into(),
            href: Some("/files/1".into()),
        }]);
        let back = round_trip(flash);
        assert_eq!(back.level, Level::Success);
        assert_eq!(back.items[0].name, "résumé; \"x\".pdf");
    }

    #[test]
    fn long_batches_are_trimmed_to_fit_a_cookie() {
        let items = (0..500)
            .map(|i| Item {
                name: format!("file-{i}.png"),
                ok: false,
                detail: "This type of file is not accepted".into(),
                href: None,
            })
            .collect();
        let back = round_trip(Flash::error("Some files failed").with_items(items));
        assert!(!back.items.is_empty() && back.items.len() < 500);
        assert_eq!(back.message, "Some files failed");

        // Failures are what people need to see: successes go first.
        let mut items: Vec<Item> = (0..100)
            .map(|i| Item {
                name: format!("fine-{i}.png"),
                ok: true,
                detail: "1 KiB".into(),
                href: Some(format!("/files/{}", uuid::Uuid::new_v4())),
            })
            .collect();
        items.push(Item {
            name: "broken.png".into(),
            ok: false,
            detail: "Not sent".into(),
            href: None,
        });
        let back = round_trip(Flash::error("Some files failed").with_items(items));
        assert_eq!(back.items.last().unwrap().name, "broken.png");
        assert!(back.items.len() > 10, "{}", back.items.len());
    }

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(safe_location("/duplicates"), "/duplicates");
        assert_eq!(safe_location("//evil.example/"), "/");
        assert_eq!(safe_location("https://evil.example/"), "/");
        assert_eq!(safe_location("/\\evil.example"), "/");
        // Browsers drop tabs and newlines inside URLs: "/<TAB>/evil" becomes "//evil".
        assert_eq!(safe_location("/\t/evil.example"), "/");
        assert_eq!(safe_location("/\t\\evil.example"), "/");
    }

    #[test]
    fn garbage_cookies_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("flash=%7Bnope"));
        assert!(Flash::from_headers(&headers).is_none());
    }
}
