//! The pages' data, rendered by askama templates in `templates/`.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::assets;
use crate::flash::Flash;

/// Which part of the site a page belongs to (highlights the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Files,
    Upload,
    Stats,
    Duplicates,
    None,
}

pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's frame needs: title, navigation, message, API state, asset URLs.
pub struct Layout {
    pub title: String,
    pub nav: Vec<NavLink>,
    pub flash: Option<Flash>,
    /// Shows the "file service unavailable" banner.
    pub api_down: bool,
    pub css: &'static str,
    pub js: &'static str,
    pub icon: &'static str,
}

impl Layout {
    pub fn new(title: impl Into<String>, section: Section, headers: &HeaderMap) -> Self {
        let mut layout = Self::bare(title, section);
        layout.flash = Flash::from_headers(headers);
        layout
    }

    /// A layout without the request's flash message (error pages).
    pub fn bare(title: impl Into<String>, section: Section) -> Self {
        let nav = [
            ("/", "Files", Section::Files),
            ("/upload", "Upload", Section::Upload),
            ("/stats", "Statistics", Section::Stats),
            ("/duplicates", "Duplicates", Section::Duplicates),
        ]
        .into_iter()
        .map(|(href, label, s)| NavLink {
            href,
            label,
            current: s == section,
        })
        .collect();
        Self {
            title: title.into(),
            nav,
            flash: None,
            api_down: false,
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            icon: assets::url("favicon.svg"),
        }
    }
}

/// Renders `page` as an HTML response; pages are never cached (their data changes).
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(error = %error, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be drawn.",
            )
                .into_response()
        }
    }
}

/// A page that explains what went wrong, with the right status.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub heading: String,
    pub message: String,
}

impl ErrorPage {
    pub fn response(status: StatusCode, heading: &str, message: &str) -> Response {
        let mut layout = Layout::bare(heading, Section::None);
        layout.api_down = status == StatusCode::SERVICE_UNAVAILABLE;
        html(
            status,
            &ErrorPage {
                layout,
                status: status.as_u16(),
                heading: heading.to_owned(),
                message: message.to_owned(),
            },
        )
    }
}
