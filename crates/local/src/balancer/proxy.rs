//! The listener and the forwarding path: accept client connections (HTTP/1.1 with
//! keep-alive, or h2c),
//! route each request by the rules, forward it over a pooled keep-alive connection to the
//! chosen target with bodies streamed both ways (`upstream`), and answer 502/503/504 like
//! the ALB.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, TryAcquireError, oneshot};

use super::Shared;
use super::headers::{self, ClientConnection};
use super::idle;
use super::upstream::{self, UpstreamBody};
use crate::accept::{self, AcceptErrors};
use crate::repeated::{self, Repeated, Verdict};

/// The ALB's answer to an `X-Forwarded-For` with more than 30 addresses (S5.13).
const TOO_MANY_FORWARDED_FOR: StatusCode = match StatusCode::from_u16(463) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};
/// How long shutdown waits for in-flight requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The ALB's limit on a request's headers, request line included (S5.13): over it, 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The ALB's limit on concurrent HTTP/2 streams per client connection.
const MAX_STREAMS: u32 = 128;

/// What one worker's requests share: the balancer's state and the worker's own pools.
struct Worker {
    shared: Arc<Shared>,
    /// This worker's index into each target's pools.
    index: usize,
    /// Pooled connections idle longer than this are not reused.
    idle_timeout: Duration,
}

/// Binds one listening socket per worker on `addr` (port 0 picks a port) with
/// `SO_REUSEPORT`, so that the kernel spreads new connections evenly over the workers (with
/// one shared socket, whichever worker wakes first accepts a whole burst and the other idles).
///
/// A plain bind comes first: it fails when anyone — another berth included — already listens
/// there, which `SO_REUSEPORT` alone would allow.
pub(crate) fn bind_listeners(
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let socket = |reuse_port: bool| -> std::io::Result<TcpSocket> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(reuse_port)?;
        Ok(socket)
    };
    let probe = socket(false)?;
    probe.bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    (0..workers.max(1))
        .map(|_| {
            let socket = socket(true)?;
            socket.bind(addr)?;
            socket.listen(1024)?.into_std()
        })
        .collect()
}

/// One worker: a thread with its own single-threaded runtime, listening socket and
/// keep-alive pools, like an nginx worker process. A client connection and the upstream
/// connections serving it then live on one thread, which halves the wake-ups per request
/// compared with one multi-threaded runtime (measured in BENCHMARKS.md).
pub(crate) fn spawn_worker(
    index: usize,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    limits: WorkerLimits,
) -> std::io::Result<oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("berth-lb-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, shared, index, limits).await,
                    Err(error) => tracing::error!(%error, "load balancer worker cannot listen"),
                }
            });
            // Let detached connection tasks go with the runtime, then report.
            drop(runtime);
            let _ = done.send(());
        })?;
    Ok(finished)
}

/// One worker's share of the listener's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerLimits {
    /// The listener's idle timeout (S5.14), for client and pooled target connections.
    pub(crate) idle_timeout: Duration,
    /// Client connections this worker may hold at once (`crate::fds`).
    pub(crate) max_connections: usize,
}

/// Accepts connections until the balancer stops, then lets in-flight requests finish.
async fn serve(listener: TcpListener, shared: Arc<Shared>, index: usize, limits: WorkerLimits) {
    let WorkerLimits {
        idle_timeout,
        max_connections,
    } = limits;
    // HTTP/1.1, and HTTP/2 without TLS (h2c) for clients that start with its preface.
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Head and body copied into one buffer and sent with write(2): for the small
        // responses typical behind a balancer that is cheaper than writev(2) with an iovec
        // per piece (measured in BENCHMARKS.md).
        .writev(false)
        // A head trickled in a byte at a time is not idle (`idle`), but must still end.
        .header_read_timeout(idle_timeout)
        // A head that does not fit is answered 431 by hyper; body bytes are streamed, so
        // this buffer bounds only the head.
        .max_buf_size(MAX_HEADER_BYTES);
    http.http2()
        .timer(TokioTimer::new())
        // h2 answers 431 to a header list over this.
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_STREAMS);
    let graceful = GracefulShutdown::new();
    let stop = shared.stop.clone();
    let listener_port = shared.local_addr.port();
    let listener_port_value = HeaderValue::from(listener_port);
    let worker = Arc::new(Worker {
        shared,
        index,
        idle_timeout,
    });
    let connections = Arc::new(Semaphore::new(max_connections));
    let mut at_limit = Repeated::default();
    let mut errors = AcceptErrors::new("load balancer");
    loop {
        let permit = match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) => {
                log_at_limit(&mut at_limit, max_connections);
                tokio::select! {
                    () = stop.cancelled() => break,
                    permit = Arc::clone(&connections).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_closed) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept::pause(errors.failed(&error), &stop).await;
                    continue;
                }
            },
        };
        errors.accepted();
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %peer, "cannot disable Nagle's algorithm");
        }
        let client = Arc::new(ClientConnection {
            ip: HeaderValue::try_from(peer.ip().to_string())
                .unwrap_or(HeaderValue::from_static("0.0.0.0")),
            listener_port,
            listener_port_value: listener_port_value.clone(),
        });
        let worker = Arc::clone(&worker);
        let service =
            service_fn(move |request| forward(Arc::clone(&worker), Arc::clone(&client), request));
        let watcher = graceful.watcher();
        let http = http.clone();
        tokio::spawn(async move {
            // Held until the connection is gone, so the bound counts open connections.
            let _permit = permit;
            let stream = idle::Watched::new(stream);
            let activity = stream.activity();
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                biased;
                served = connection => {
                    if let Err(error) = served {
                        tracing::debug!(%error, %peer, "client connection ended with an error");
                    }
                }
                () = idle::expired(&activity, idle_timeout) => {
                    tracing::debug!(%peer, "closing a client connection idle for the idle timeout");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over with requests still in flight");
    }
}

/// Logs that the connection bound is reached, at most once per window.
fn log_at_limit(at_limit: &mut Repeated, max_connections: usize) {
    match at_limit.occurred(std::time::Instant::now()) {
        Verdict::First => tracing::warn!(
            max_connections,
            "load balancer worker at its client connection bound: new connections wait"
        ),
        Verdict::Repeated { times, over } => tracing::warn!(
            max_connections,
            "load balancer worker at its client connection bound: new connections wait (repeated {times} times in the last {}s)",
            repeated::seconds(over)
        ),
        Verdict::Suppress => {}
    }
}

/// Routes one request and forwards it; never fails, errors become 502/503/504 responses.
async fn forward(
    worker: Arc<Worker>,
    client: Arc<ClientConnection>,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    if headers::too_many_forwarded_for(request.headers()) {
        return Ok(refuse(request.into_body(), TOO_MANY_FORWARDED_FOR));
    }
    if let Some(refusal) = unsupported(&request) {
        return Ok(refuse(request.into_body(), refusal));
    }
    let chosen = {
        let rules = worker.shared.rules.load();
        let group = rules.select(request.uri().path()).choose();
        group
            .pick()
            .map(|in_flight| (in_flight, group.config.request_timeout))
    };
    let Some((in_flight, request_timeout)) = chosen else {
        return Ok(refuse(request.into_body(), StatusCode::SERVICE_UNAVAILABLE));
    };

    // Targets get origin-form (`/path?query`); an absolute-form request's authority is its
    // host (RFC 9112 §3.2.2).
    if let Some(authority) = request.uri().authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            request.headers_mut().insert(header::HOST, host);
        }
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path);
    }
    if !request.headers().contains_key(header::HOST) {
        // HTTP/1.0 clients may send none; HTTP/1.1 requires one.
        let host = in_flight.target().host.clone();
        request.headers_mut().insert(header::HOST, host);
    }
    let target = in_flight.target();
    let (parts, mut body) = request.into_parts();
    let sent = upstream::send(
        target,
        worker.index,
        worker.idle_timeout,
        request_timeout,
        &parts,
        &client,
        &mut body,
    )
    .await;
    // Whatever of the body the target did not wait for (an early 413, a 504, a 502).
    linger(body);
    match sent {
        Ok((head, connection)) => {
            let body =
                UpstreamBody::new(connection, &head, in_flight, worker.index, request_timeout);
            let mut response = Response::new(ProxyBody::Upstream(body));
            *response.status_mut() = head.status;
            *response.headers_mut() = head.headers;
            Ok(response)
        }
        Err(error) => {
            let status = if error.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else if error.is_client_error() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            tracing::debug!(
                target = %target.addr,
                error = %crate::error_chain(&error),
                %status,
                "forwarding failed"
            );
            Ok(error_response(status))
        }
    }
}

/// How long a client's request body that nobody waits for is still read (nginx's
/// `lingering_time`), and the longest pause in it (`lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_IDLE: Duration = Duration::from_secs(5);

/// An answer given without reading the request body: the body lingers.
fn refuse(body: Incoming, status: StatusCode) -> Response<ProxyBody> {
    linger(body);
    error_response(status)
}

/// A lingering close, as nginx and HAProxy do it: an answer given while the client is still
/// sending its body (the balancer's own refusal, a target's early 413, a 504) goes out, and
/// the rest of the body is read and thrown away, bounded by [`LINGER_TIME`] and
/// [`LINGER_IDLE`]. Dropped unread instead, the client connection would close with data in
/// its receive buffer, and the kernel then sends a reset that can destroy the answer before
/// the client reads it (or fail its write first). A body already read to its end costs
/// nothing here.
fn linger(mut body: Incoming) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(LINGER_IDLE.min(left), body.frame()).await {
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    });
}

/// Requests the balancer does not forward: `CONNECT` (no tunnels, 405) and a body in a
/// transfer coding other than chunked (the target would get it without knowing its coding,
/// 501 as nginx answers).
fn unsupported(request: &Request<Incoming>) -> Option<StatusCode> {
    if request.method() == Method::CONNECT {
        return Some(StatusCode::METHOD_NOT_ALLOWED);
    }
    let codings = request.headers().get_all(header::TRANSFER_ENCODING);
    let other_coding = codings.iter().any(|value| {
        value
            .as_bytes()
            .split(|&c| c == b',')
            .map(<[u8]>::trim_ascii)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"chunked"))
    });
    other_coding.then_some(StatusCode::NOT_IMPLEMENTED)
}

/// A balancer-generated error page in the ALB's shape (S5.10: the 503 page is 162 bytes,
/// its body ending in CRLF).
pub(crate) fn error_response(status: StatusCode) -> Response<ProxyBody> {
    let body: &'static str = match status {
        StatusCode::BAD_GATEWAY => {
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        StatusCode::GATEWAY_TIMEOUT => {
            "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            "<html>\r\n<head><title>405 Method Not Allowed</title></head>\r\n<body>\r\n<center><h1>405 Method Not Allowed</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        StatusCode::NOT_IMPLEMENTED => {
            "<html>\r\n<head><title>501 Not Implemented</title></head>\r\n<body>\r\n<center><h1>501 Not Implemented</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        TOO_MANY_FORWARDED_FOR => {
            "<html>\r\n<head><title>463</title></head>\r\n<body>\r\n<center><h1>463</h1></center>\r\n</body>\r\n</html>\r\n"
        }
        _ => {
            "<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n"
        }
    };
    let mut response = Response::new(ProxyBody::Fixed(Some(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::SERVER, HeaderValue::from_static("berth"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

/// A response body: the target's, streamed, or a balancer-generated page.
#[derive(Debug)]
pub(crate) enum ProxyBody {
    /// The target's body; the exchange ends when it has been sent (or fails).
    Upstream(UpstreamBody),
    /// A fixed body, taken on the first poll.
    Fixed(Option<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx),
            Self::Fixed(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => body.is_end_stream(),
            Self::Fixed(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream(body) => body.size_hint(),
            Self::Fixed(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
