//! Cross-cutting layers: one log line per request, security headers, same-origin form posts.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::views::ErrorPage;

/// One JSON log line per request (the subscriber formats it): method, path, status, duration.
/// The query string is left out: it is not needed to follow traffic and keeps logs small.
pub async fn log_request(
    axum::extract::State(access_log): axum::extract::State<crate::config::AccessLog>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    if !access_log.logs(status) {
        return response;
    }
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "http", %method, %path, status, duration_ms, "request");
    } else {
        tracing::info!(target: "http", %method, %path, status, duration_ms, "request");
    }
    response
}

/// Headers that cost nothing and close whole classes of attacks. The pages use no inline
/// script or style, so the content security policy can forbid both.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Refuses form posts sent by other sites' pages (cross-site request forgery): browsers name
/// the posting page's origin in `Origin`, which must be this host. The API itself only takes
/// JSON, which browsers will not send cross-origin without CORS, so without this check the
/// web forms would be the weaker door. Requests without `Origin` (curl, old browsers) pass.
pub async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let headers = request.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host.trim_end_matches('/'));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let forwarded_host = headers
        .get("x-forwarded-host")
        .and_then(|h| h.to_str().ok());
    let same = origin_host.is_some_and(|o| Some(o) == host || Some(o) == forwarded_host);
    if same {
        next.run(request).await
    } else {
        ErrorPage::response(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another site. Please use the form on this site.",
        )
    }
}
