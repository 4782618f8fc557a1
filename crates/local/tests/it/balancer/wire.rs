//! The HTTP/1.1 the balancer reads from targets, byte for byte: every way a response body
//! can be framed, interim responses, early answers to uploads, connections the target closes
//! while they sit in the pool, and responses that must become a 502 rather than be passed on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use tokio::sync::Semaphore;

use super::{balancer, balancer_with_request_timeout, client, get, wait_state, within};

/// A target that answers each request with what its method and path name (see `script`),
/// reading request bodies by their `Content-Length` as a real server would.
struct RawTarget {
    addr: SocketAddr,
    state: Arc<Recorded>,
}

/// What the target records, and the gates the test opens.
struct Recorded {
    /// Connections accepted so far.
    connections: AtomicUsize,
    /// Connections the target has closed after acting (not those its peer closed).
    closed: AtomicUsize,
    /// `METHOD /path body=<length>` of every request but health checks, in arrival order.
    seen: Mutex<Vec<String>>,
    /// `/slow` requests wait for a permit.
    slow: Semaphore,
    /// `SendThenMore` waits for a permit before sending its late bytes...
    late: Semaphore,
    /// ...and counts them here once sent.
    late_sent: AtomicUsize,
}

impl Default for Recorded {
    fn default() -> Self {
        Self {
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            seen: Mutex::default(),
            slow: Semaphore::new(0),
            late: Semaphore::new(0),
            late_sent: AtomicUsize::new(0),
        }
    }
}
/// What the target does with a request.
enum Act {
    /// Send these bytes; close the connection after when `close`.
    Send(&'static [u8], bool),
    /// Send the first bytes, then the second ones when the test opens the `late` gate, on a
    /// kept-alive connection.
    SendThenMore(&'static [u8], &'static [u8]),
    /// Wait until the test opens the `slow` gate, then send.
    SendLater(&'static [u8]),
    /// Close the connection without answering (a handler that did its work, then crashed).
    Drop,
    /// Send these bytes, then nothing more, keeping the connection open.
    SendAndHang(&'static [u8]),
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn script(method: &str, path: &str) -> Act {
    let keep = false;
    let close = true;
    match (method, path) {
        (_, "/health") | ("GET" | "POST", "/ok") => Act::Send(OK, keep),
        ("HEAD", "/length") => Act::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n", keep),
        (_, "/length") => Act::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world", keep),
        (_, "/chunked") => Act::Send(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            keep,
        ),
        (_, "/until-close") => Act::Send(b"HTTP/1.0 200 OK\r\n\r\nhello world", close),
        (_, "/continue") => Act::Send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            keep,
        ),
        (_, "/conflicting-length") => Act::Send(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
            keep,
        ),
        (_, "/length-and-chunked") => Act::Send(
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\ntransfer-encoding: chunked\r\n\r\n\
              0\r\n\r\nGARBAGE",
            keep,
        ),
        (_, "/malformed") => Act::Send(b"HTTP/1.1 2x0 OK\r\n\r\n", close),
        (_, "/truncated") => {
            Act::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten!!", close)
        }
        // Answers before reading the body, as an upload limit does; `/early-413-open` keeps
        // the connection (and the unread body) open.
        (_, "/early-413") => Act::Send(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large",
            close,
        ),
        (_, "/early-413-open") => Act::Send(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\n\r\ntoo large",
            keep,
        ),
        // Keep-alive as far as the headers say, then closed: the race a pooled connection
        // can lose.
        (_, "/then-close") => Act::Send(OK, close),
        (_, "/boom") => Act::Drop,
        (_, "/stall") => Act::SendAndHang(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf"),
        // Held until released, so that concurrent requests each get their own connection.
        (_, "/slow") => Act::SendLater(OK),
        // A naive server that sends the GET body on a HEAD response, late; here the body
        // happens to look like a response.
        ("HEAD", "/page") => Act::SendThenMore(
            b"HTTP/1.1 200 OK\r\ncontent-length: 38\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhacked",
        ),
        _ => Act::Send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n", keep),
    }
}

impl RawTarget {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Recorded::default());
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { serve(stream, &shared).await });
            }
        });
        Self { addr, state }
    }

    fn seen(&self) -> Vec<String> {
        self.state.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Waits until `count(state)` reaches `at_least`.
    async fn wait_for(&self, what: &str, at_least: usize, count: impl Fn(&Recorded) -> usize) {
        within(what, async {
            while count(&self.state) < at_least {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

/// Reads requests (head, then `Content-Length` bytes of body) and acts on each.
async fn serve(mut stream: TcpStream, state: &Recorded) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = fill_until(&mut stream, &mut buf, |buf| {
            buf.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|end| end + 4)
        })
        .await
        else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        buf.drain(..head_end);
        let mut request_line = head.split_whitespace();
        let method = request_line.next().unwrap_or_default().to_uppercase();
        let path = request_line.next().unwrap_or_default().to_owned();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap_or(0));
        let act = script(&method, &path);
        let answers_first = path.starts_with("/early-413") || matches!(act, Act::Send(_, true));
        if !answers_first {
            if fill_until(&mut stream, &mut buf, |buf| {
                (buf.len() >= length).then_some(length)
            })
            .await
            .is_none()
            {
                return;
            }
            buf.drain(..length);
        }
        if path != "/health" {
            state
                .seen
                .lock()
                .unwrap()
                .push(format!("{method} {path} body={length}"));
        }
        let keep_going = match act {
            Act::Send(bytes, close) => stream.write_all(bytes).await.is_ok() && !close,
            Act::SendThenMore(first, more) => {
                let sent = stream.write_all(first).await.is_ok();
                state.late.acquire().await.unwrap().forget();
                let sent = sent && stream.write_all(more).await.is_ok();
                state.late_sent.fetch_add(1, Ordering::SeqCst);
                sent
            }
            Act::SendLater(bytes) => {
                state.slow.acquire().await.unwrap().forget();
                stream.write_all(bytes).await.is_ok()
            }
            Act::Drop => false,
            Act::SendAndHang(bytes) => {
                let _ = stream.write_all(bytes).await;
                std::future::pending::<()>().await;
                false
            }
        };
        if !keep_going {
            drop(stream);
            state.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

/// Reads into `buf` until `complete` finds what it needs; `None` if the connection ends
/// first.
async fn fill_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    complete: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    loop {
        if let Some(found) = complete(buf) {
            return Some(found);
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A balancer with one healthy raw target in `web`.
async fn balancer_with_raw_target() -> (Balancer, RawTarget) {
    raw_target_behind(balancer().await).await
}

async fn raw_target_behind(lb: Balancer) -> (Balancer, RawTarget) {
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
    assert!(target.connections() <= health_check_connections + 2);
}

#[tokio::test]
async fn ambiguous_or_malformed_responses_are_502() {
    let (lb, _target) = balancer_with_raw_target().await;
    for path in ["/conflicting-length", "/length-and-chunked", "/malformed"] {
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
        assert!(
            body.is_err(),
            "a 10-byte body of 100 must fail, got {body:?}"
        );
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

/// A lingering close: after the early answer, the rest of the client's body is still read
/// (and thrown away), so a client that reads the answer before it sends the rest is not
/// reset. (Dropping the body closed the connection at once: the rest's writes failed.)
#[tokio::test]
async fn after_an_early_answer_the_rest_of_the_upload_is_still_read() {
    let (lb, _target) = balancer_with_raw_target().await;
    let total = 4 * 1024 * 1024;
    let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
    let head = format!("POST /early-413 HTTP/1.1\r\nhost: x\r\ncontent-length: {total}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    stream.write_all(&chunk).await.unwrap();
    let mut answer = Vec::new();
    within("the early answer", async {
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"too large") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer: {answer:?}");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(answer.starts_with(b"HTTP/1.1 413"), "{answer:?}");
    let mut sent = chunk.len();
    while sent < total {
        let result = within("a write of the rest", stream.write_all(&chunk)).await;
        assert!(
            result.is_ok(),
            "after {sent} of {total} bytes the balancer stopped reading: {result:?}"
        );
        sent += chunk.len();
    }
}

#[tokio::test]
async fn pooled_connections_the_target_closed_cause_no_error() {
    let (lb, target) = balancer_with_raw_target().await;
    let client = client();
    for (i, method) in ["GET", "POST", "DELETE", "POST", "GET"]
        .into_iter()
        .enumerate()
    {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}/then-close", lb.url()))
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap();
        let response = within("a response", client.request(request)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {i} ({method})");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
        // The target closes after each response although it promised keep-alive: once it
        // has (its FIN sent), the next request finds a dead pooled connection.
        target
            .wait_for("the target to close", i + 1, |s| {
                s.closed.load(Ordering::SeqCst)
            })
            .await;
    }
    assert!(target.connections() >= 5);
}

/// Sends raw bytes to the balancer and asserts that what comes back first starts with
/// `status_line` (`HTTP/1.1 200`).
async fn assert_raw_answer(lb: &Balancer, request: &[u8], status_line: &str) {
    let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = vec![0u8; 4096];
    let n = within("a response", stream.read(&mut response))
        .await
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with(status_line), "{response}");
}

#[tokio::test]
async fn a_body_is_framed_by_its_length_whatever_connection_options_say() {
    let (lb, target) = balancer_with_raw_target().await;
    // `Connection` naming `Content-Length` once made the balancer drop the length and send
    // the body unframed: the target read it as a second request.
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let request = format!(
        "POST /ok HTTP/1.1\r\nhost: x\r\nconnection: content-length\r\n\
         content-length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    assert_raw_answer(&lb, request.as_bytes(), "HTTP/1.1 200").await;
    // An empty POST still says so.
    assert_raw_answer(
        &lb,
        b"POST /ok HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200",
    )
    .await;
    assert_eq!(
        target.seen(),
        [
            format!("POST /ok body={}", smuggled.len()),
            "POST /ok body=0".to_owned()
        ]
    );
}

#[tokio::test]
async fn tunnels_and_unknown_transfer_codings_are_refused() {
    let (lb, target) = balancer_with_raw_target().await;
    assert_raw_answer(
        &lb,
        b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
        "HTTP/1.1 405",
    )
    .await;
    assert_raw_answer(
        &lb,
        b"POST /ok HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 501",
    )
    .await;
    assert!(target.seen().is_empty(), "{:?}", target.seen());
}

#[tokio::test]
async fn a_request_the_target_drops_is_sent_at_most_twice() {
    let (lb, target) = balancer_with_raw_target().await;
    // Fill the workers' pools: overlapping requests from separate client connections.
    let mut warm = Vec::new();
    for _ in 0..16 {
        let lb = lb.clone();
        warm.push(tokio::spawn(async move { get(&lb, "/slow").await.status }));
    }
    // All sixteen held at the target at once, so each has its own connection.
    target
        .wait_for("16 slow requests", 16, |s| {
            s.seen
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.starts_with("GET /slow"))
                .count()
        })
        .await;
    target.state.slow.add_permits(16);
    for request in warm {
        assert_eq!(within("warm-up", request).await.unwrap(), StatusCode::OK);
    }
    // The target reads GET /boom, then closes without answering: once on a pooled
    // connection, that looks like the keep-alive race, so it may go once more on a new one.
    assert_eq!(get(&lb, "/boom").await.status, StatusCode::BAD_GATEWAY);
    let booms = target
        .seen()
        .iter()
        .filter(|r| r.starts_with("GET /boom"))
        .count();
    assert!(
        (1..=2).contains(&booms),
        "the target got GET /boom {booms} times"
    );
}

#[tokio::test]
async fn bytes_a_target_sends_after_a_response_never_answer_the_next_request() {
    let (lb, target) = balancer_with_raw_target().await;
    let client = client();
    let head = hyper::Request::head(format!("{}/page", lb.url()))
        .body(Full::default())
        .unwrap();
    let response = within("a response", client.request(head)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    // The response is over and its connection pooled: now the target's late bytes arrive.
    target.state.late.add_permits(1);
    target
        .wait_for("the late bytes", 1, |s| s.late_sent.load(Ordering::SeqCst))
        .await;
    // Same client connection, so the same worker and its one pooled connection.
    let get = hyper::Request::get(format!("{}/ok", lb.url()))
        .body(Full::default())
        .unwrap();
    let response = within("a response", client.request(get)).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
}

#[tokio::test]
async fn a_connection_left_with_an_unsent_body_is_not_reused() {
    let (lb, _target) = balancer_with_raw_target().await;
    let upload = Bytes::from(vec![b'x'; 8 * 1024 * 1024]);
    let request = hyper::Request::post(format!("{}/early-413-open", lb.url()))
        .body(Full::new(upload))
        .unwrap();
    let response = within("the early answer", client().request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The target still expects the rest of that body on its connection: a request written
    // there would be read as body bytes. Fresh client connections reach both workers.
    for _ in 0..8 {
        let reply = get(&lb, "/ok").await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    }
}

#[tokio::test]
async fn a_target_that_stalls_mid_body_fails_the_response() {
    let lb = balancer_with_request_timeout(Duration::from_millis(500)).await;
    let (lb, _target) = raw_target_behind(lb).await;
    let request = hyper::Request::get(format!("{}/stall", lb.url()))
        .body(Full::default())
        .unwrap();
    // The head came in time; the body stops after 4 of 10 bytes and never ends by itself.
    if let Ok(response) = within("a response", client().request(request)).await {
        let body = within("the stalled body to fail", response.into_body().collect()).await;
        assert!(body.is_err(), "got {body:?}");
    }
}
