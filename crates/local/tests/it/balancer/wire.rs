//! The HTTP/1.1 the balancer reads from targets, byte for byte: every way a response body
//! can be framed, interim responses, early answers to uploads, connections the target closes
//! while they sit in the pool, and responses that must become a 502 rather than be passed on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use berth_local::balancer::{Balancer, TargetState};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{balancer, client, get, wait_state, within};

/// A target that answers each request with the bytes its path names (see `script`).
struct RawTarget {
    addr: SocketAddr,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
}

/// What the target sends for a request, and whether it closes the connection afterwards.
fn script(method: &str, path: &str) -> (&'static [u8], bool) {
    let keep = false;
    let close = true;
    match (method, path) {
        (_, "/health") => (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", keep),
        ("HEAD", "/length") => (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n", keep),
        (_, "/length") => (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world", keep),
        (_, "/chunked") => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            keep,
        ),
        (_, "/until-close") => (b"HTTP/1.0 200 OK\r\n\r\nhello world", close),
        (_, "/continue") => (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            keep,
        ),
        (_, "/conflicting-length") => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
            keep,
        ),
        (_, "/malformed") => (b"HTTP/1.1 2x0 OK\r\n\r\n", close),
        (_, "/truncated") => (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten!!", close),
        // Answers before reading the body, as an upload limit does.
        (_, "/early-413") => (
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large",
            close,
        ),
        // Keep-alive as far as the headers say, then closed: the race a pooled connection
        // can lose.
        (_, "/then-close") => (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", close),
        _ => (b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", keep),
    }
}

impl RawTarget {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream));
            }
        });
        Self { addr, connections }
    }
}

/// Reads request heads (bodies are ignored: only `/early-413` gets one, and it closes) and
/// answers each from the script.
async fn serve(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut request_line = head.split_whitespace();
        let method = request_line.next().unwrap_or_default();
        let path = request_line.next().unwrap_or_default();
        let (response, close) = script(method, path);
        if stream.write_all(response).await.is_err() || close {
            return;
        }
    }
}

/// A balancer with one healthy raw target in `web`.
async fn balancer_with_raw_target() -> (Balancer, RawTarget) {
    let lb = balancer().await;
    let target = RawTarget::start().await;
    lb.register("web", target.addr).unwrap();
    wait_state(&lb, target.addr, TargetState::Healthy).await;
    (lb, target)
}

#[tokio::test]
async fn bodies_arrive_whole_however_the_target_frames_them() {
    let (lb, _target) = balancer_with_raw_target().await;
    for path in ["/length", "/chunked", "/until-close", "/length"] {
        let reply = get(&lb, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.body, "hello world", "{path}");
        assert!(
            reply
                .headers
                .get("transfer-encoding")
                .is_none_or(|te| te == "chunked")
        );
        assert!(reply.headers.get("x-trailer").is_none(), "{path}");
    }
}

#[tokio::test]
async fn interim_responses_are_not_forwarded_as_the_answer() {
    let (lb, _target) = balancer_with_raw_target().await;
    let reply = get(&lb, "/continue").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ok");
}

#[tokio::test]
async fn a_head_response_has_no_body_and_the_connection_stays_usable() {
    let (lb, target) = balancer_with_raw_target().await;
    let client = client();
    for method in ["HEAD", "GET", "HEAD", "GET"] {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}/length", lb.url()))
            .body(Full::default())
            .unwrap();
        let response = within("a response", client.request(request)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-length"], "11");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let expected = if method == "HEAD" { "" } else { "hello world" };
        assert_eq!(body, expected, "{method}");
    }
    // Health checks aside, the four requests shared pooled connections: a HEAD response
    // read as if a body followed would have hung or closed one.
    let health_check_connections = 1;
    assert!(target.connections.load(Ordering::SeqCst) <= health_check_connections + 2);
}

#[tokio::test]
async fn ambiguous_or_malformed_responses_are_502() {
    let (lb, _target) = balancer_with_raw_target().await;
    for path in ["/conflicting-length", "/malformed"] {
        let reply = get(&lb, path).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{path}");
        assert!(
            reply.body.contains("502 Bad Gateway"),
            "{path}: {}",
            reply.body
        );
    }
    // And the balancer goes on serving.
    assert_eq!(get(&lb, "/length").await.body, "hello world");
}

#[tokio::test]
async fn a_truncated_body_is_not_passed_off_as_complete() {
    let (lb, _target) = balancer_with_raw_target().await;
    let request = hyper::Request::get(format!("{}/truncated", lb.url()))
        .body(Full::default())
        .unwrap();
    // The client may get the head and then a failing body, or no response at all; never
    // a response that ends as if it were complete.
    if let Ok(response) = within("a response", client().request(request)).await {
        assert_eq!(response.headers()["content-length"], "100");
        let body = within("the body", response.into_body().collect()).await;
        assert!(body.is_err(), "a 10-byte body of 100 must fail, got {body:?}");
    }
}

#[tokio::test]
async fn an_early_answer_to_an_upload_reaches_the_client() {
    let (lb, _target) = balancer_with_raw_target().await;
    // More than the socket buffers hold, so the target answers long before it is all sent.
    let upload = Bytes::from(vec![b'x'; 8 * 1024 * 1024]);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::post(format!("{}/early-413", lb.url()))
        .body(Full::new(upload))
        .unwrap();
    let response = within("the early answer", client.request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "too large");
}

#[tokio::test]
async fn pooled_connections_the_target_closed_cause_no_error() {
    let (lb, target) = balancer_with_raw_target().await;
    let client = client();
    for (i, method) in ["GET", "POST", "DELETE", "POST", "GET"]
        .into_iter()
        .enumerate()
    {
        // The target closes after each response although it promised keep-alive; give its
        // FIN time to arrive, so the next request finds a dead pooled connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}/then-close", lb.url()))
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap();
        let response = within("a response", client.request(request)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {i} ({method})");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
    }
    assert!(target.connections.load(Ordering::SeqCst) >= 5);
}
