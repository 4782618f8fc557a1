//! One origin for the browser, as the load balancer gives it in production: `/api/*` goes to
//! the API, everything else to the web frontend. Test-only: production routing is the load
//! balancer's job, and the frontend never proxies the API itself.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
struct Targets {
    api: String,
    web: String,
    http: reqwest::Client,
}

/// Serves the path router on 127.0.0.1:0; returns its base URL.
pub async fn start(api: &str, web: &str) -> String {
    let targets = Targets {
        api: api.to_owned(),
        web: web.to_owned(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let app = Router::new().fallback(forward).with_state(targets);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Hop-by-hop headers, which a proxy must not pass on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "proxy-connection"
    )
}

async fn forward(State(targets): State<Targets>, request: Request) -> Response {
    let path = request.uri().path();
    let target = if path == "/api" || path.starts_with("/api/") {
        &targets.api
    } else {
        &targets.web
    };
    let url = format!(
        "{target}{}",
        request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/")
    );
    let mut outgoing = targets.http.request(request.method().clone(), url);
    for (name, value) in request.headers() {
        // Host is kept, as the ALB keeps it: the frontend compares it with Origin.
        if !hop_by_hop(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let body = reqwest::Body::wrap_stream(request.into_body().into_data_stream());
    match outgoing.body(body).send().await {
        Ok(upstream) => {
            let mut response = Response::builder().status(upstream.status());
            for (name, value) in upstream.headers() {
                if !hop_by_hop(name) && name != header::CONTENT_LENGTH {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(upstream.bytes_stream()))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
