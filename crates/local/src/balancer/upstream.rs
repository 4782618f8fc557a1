//! One request's exchange with a target over a pooled keep-alive connection: write the
//! request, stream its body while watching for the response, read the response head, and
//! stream the response body back ([`UpstreamBody`]) — all inside the client connection's
//! task, so a request costs no hand-off between tasks.

use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, header, request};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::io::poll_read_buf;

use super::headers::{self, ClientConnection};
use super::http1::{
    self, ChunkedDecoder, Decoded, Framing, HeadError, RequestFraming, ResponseHead,
};
use super::pool::OpenSocket;
use super::target_group::{InFlight, Target};

/// Connecting to a target longer than this is a 504 (S5.12).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Room made in the read buffer before each read from a target.
const READ_SIZE: usize = 16 * 1024;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connection refused or failed")]
    Connect(#[source] io::Error),
    #[error("connecting took longer than {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("no response within the request timeout")]
    Timeout,
    #[error("writing the request failed")]
    Write(#[source] io::Error),
    #[error("the target closed the connection before responding")]
    Closed,
    #[error("reading the response failed")]
    Read(#[source] io::Error),
    #[error("the target's response was refused")]
    Head(#[from] HeadError),
    #[error("the client's request body failed")]
    ClientBody(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl UpstreamError {
    /// Whether the ALB would answer 504 rather than 502 (S5.11, S5.12).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, Self::ConnectTimeout | Self::Timeout)
    }

    /// Whether the request failed on the client's side rather than the target's.
    pub(crate) fn is_client_error(&self) -> bool {
        matches!(self, Self::ClientBody(_))
    }

    /// Whether not one byte came back: on a pooled connection, the target may have closed it
    /// just as the request went out (the keep-alive race).
    fn is_stale_connection(&self) -> bool {
        matches!(self, Self::Write(_) | Self::Closed)
    }
}

/// A keep-alive connection to a target.
#[derive(Debug)]
pub(crate) struct Connection {
    // Declared before `stream`, so it is dropped (unregistered) before the socket closes.
    _open: OpenSocket,
    stream: TcpStream,
    /// Bytes read from the target and not consumed yet.
    read: BytesMut,
    /// The request head, kept between requests to reuse its allocation.
    write: BytesMut,
}

impl Connection {
    async fn connect(target: &Target, worker: usize) -> Result<Self, UpstreamError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)?
            .map_err(UpstreamError::Connect)?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, target = %target.addr, "cannot disable Nagle's algorithm");
        }
        Ok(Self {
            _open: target.pool(worker).open(&stream),
            stream,
            read: BytesMut::with_capacity(READ_SIZE),
            write: BytesMut::with_capacity(1024),
        })
    }

    /// Whether a pooled connection is still fit to carry a request: the target has neither
    /// closed it nor sent anything unasked (bytes after a response must never be read as the
    /// next one's). No system call unless the socket turned readable while idle: Tokio
    /// clears readiness after a read that drained the socket.
    fn is_open(&self) -> bool {
        matches!(
            self.stream.try_read(&mut [0u8; 1]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock
        )
    }

    /// Puts the request head for `parts`, as the target gets it, in the write buffer.
    fn encode(
        &mut self,
        parts: &request::Parts,
        client: &ClientConnection,
        framing: RequestFraming,
    ) {
        self.write.clear();
        http1::encode_request_head(parts, framing, &mut self.write, |out| {
            headers::write_request_headers(&parts.headers, client, out);
        });
    }

    /// Sends the encoded request, without a body, and reads the response head.
    async fn exchange(
        &mut self,
        method: &Method,
        timeout: Duration,
    ) -> Result<ResponseHead, UpstreamError> {
        let Self {
            stream,
            read,
            write,
            ..
        } = self;
        let exchange = async {
            stream
                .write_all(write)
                .await
                .map_err(UpstreamError::Write)?;
            read_head(stream, read, method).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }

    /// Sends a request with its body, watching for the response while the body is still
    /// being sent: a target may answer early (a 413 for an upload over its limit) and stop
    /// reading. The timeout counts from the last progress (a body chunk written, or the
    /// whole body sent), so a long upload that keeps moving is not a 504, and a stalled one
    /// is a 504 one timeout after its last chunk. Returns the head and whether the whole
    /// body was written without error.
    async fn exchange_with_body<B>(
        &mut self,
        method: &Method,
        body: &mut B,
        chunked: bool,
        timeout: Duration,
    ) -> Result<(ResponseHead, bool), UpstreamError>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Self {
            stream,
            read,
            write,
            ..
        } = self;
        let (mut reader, mut writer) = stream.split();
        // When the last progress was, in microseconds since `start`: the deadline is one
        // timeout after it. (An atomic, not a Cell, so that the future stays `Send`.)
        let start = Instant::now();
        let progress = AtomicU64::new(0);
        let progressed = || progress.store(micros_since(start), Ordering::Relaxed);
        let send = async {
            writer
                .write_all(write)
                .await
                .map_err(UpstreamError::Write)?;
            let mut framed = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|error| UpstreamError::ClientBody(error.into()))?;
                let Ok(data) = frame.into_data() else {
                    continue; // Trailers are not forwarded.
                };
                if data.is_empty() {
                    continue;
                }
                if chunked {
                    framed.clear();
                    // Writing to a BytesMut cannot fail.
                    let _ = write!(framed, "{:x}\r\n", data.len());
                    framed.put_slice(&data);
                    framed.put_slice(b"\r\n");
                    writer.write_all(&framed).await
                } else {
                    writer.write_all(&data).await
                }
                .map_err(UpstreamError::Write)?;
                progressed();
            }
            if chunked {
                writer
                    .write_all(b"0\r\n\r\n")
                    .await
                    .map_err(UpstreamError::Write)?;
            }
            Ok::<(), UpstreamError>(())
        };
        let head = read_head(&mut reader, read, method);
        let idle = tokio::time::sleep(timeout);
        tokio::pin!(send, head, idle);
        let mut sent: Option<bool> = None;
        loop {
            tokio::select! {
                biased;
                head = &mut head => return head.map(|head| (head, sent == Some(true))),
                result = &mut send, if sent.is_none() => {
                    match result {
                        Ok(()) => sent = Some(true),
                        // The client is gone: nobody is waiting for the response.
                        Err(error @ UpstreamError::ClientBody(_)) => return Err(error),
                        // The target stopped reading; it may still have answered.
                        Err(error) => {
                            tracing::debug!(%error, "target stopped reading the request body");
                            sent = Some(false);
                        }
                    }
                    // The wait for the response starts now.
                    progressed();
                    idle.as_mut().reset(Instant::now() + timeout);
                }
                () = &mut idle => {
                    // The timer is not pushed back at each chunk (that would cost a timer
                    // update per chunk); when it fires it moves to one timeout after the
                    // last progress, or gives up if that is now.
                    let deadline =
                        start + Duration::from_micros(progress.load(Ordering::Relaxed)) + timeout;
                    if Instant::now() >= deadline {
                        return Err(UpstreamError::Timeout);
                    }
                    idle.as_mut().reset(deadline);
                }
            }
        }
    }
}

/// Microseconds from `start` to now, saturating.
fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Reads until a final response head is complete, skipping interim (1xx) responses.
async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<ResponseHead, UpstreamError> {
    let mut received = false;
    loop {
        if !buf.is_empty()
            && let Some(head) = http1::parse_response_head(buf, method)?
        {
            return Ok(head);
        }
        buf.reserve(READ_SIZE);
        match reader.read_buf(buf).await {
            Ok(0) if !received => return Err(UpstreamError::Closed),
            Ok(0) => return Err(UpstreamError::Read(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => received = true,
            Err(error) if !received && error.kind() == io::ErrorKind::ConnectionReset => {
                return Err(UpstreamError::Closed);
            }
            Err(error) => return Err(UpstreamError::Read(error)),
        }
    }
}

/// Forwards a request to `target` over one of `worker`'s pooled connections that is still
/// open, or a new one, and returns the response head with the connection to read the body
/// from. No response head within `timeout` of the request (or of the last progress of its
/// body) is a 504.
///
/// A request is sent once, with one exception: an idempotent request without a body that
/// got not one byte back on a pooled connection (the target closed it just as the request
/// went out) goes once more, on a new connection.
pub(crate) async fn send(
    target: &Target,
    worker: usize,
    idle_timeout: Duration,
    timeout: Duration,
    parts: &request::Parts,
    client: &ClientConnection,
    body: &mut Incoming,
) -> Result<(ResponseHead, Connection), UpstreamError> {
    let framing = request_framing(parts, body);
    let pool = target.pool(worker);
    let (mut connection, pooled) = loop {
        match pool.checkout(idle_timeout) {
            Some(connection) if connection.is_open() => break (connection, true),
            Some(_closed) => {}
            None => break (Connection::connect(target, worker).await?, false),
        }
    };
    connection.encode(parts, client, framing);
    if matches!(framing, RequestFraming::None | RequestFraming::Length(0)) {
        return match connection.exchange(&parts.method, timeout).await {
            Ok(head) => Ok((head, connection)),
            Err(error) if pooled && error.is_stale_connection() && parts.method.is_idempotent() => {
                let mut connection = Connection::connect(target, worker).await?;
                connection.encode(parts, client, framing);
                let head = connection.exchange(&parts.method, timeout).await?;
                Ok((head, connection))
            }
            Err(error) => Err(error),
        };
    }
    let chunked = framing == RequestFraming::Chunked;
    let (mut head, complete) = connection
        .exchange_with_body(&parts.method, body, chunked, timeout)
        .await?;
    if !complete {
        // The rest of the request body would arrive where the next response is expected.
        head.keep_alive = false;
    }
    Ok((head, connection))
}

/// The framing the target gets for this request's body: its length when hyper knows it
/// (the client sent `Content-Length`), chunked otherwise, nothing for a bodiless request
/// that came without a length.
fn request_framing(parts: &request::Parts, body: &Incoming) -> RequestFraming {
    if body.is_end_stream() {
        if parts.headers.contains_key(header::CONTENT_LENGTH) {
            RequestFraming::Length(0)
        } else {
            RequestFraming::None
        }
    } else {
        body.size_hint()
            .exact()
            .map_or(RequestFraming::Chunked, RequestFraming::Length)
    }
}
/// A target's response body, read from the connection as the client takes it. When it is
/// complete the connection goes back to the pool and the request stops counting as in
/// flight; if it fails or is dropped early, the connection is closed instead.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    connection: Option<Connection>,
    remaining: Remaining,
    keep_alive: bool,
    in_flight: Option<InFlight>,
    worker: usize,
    /// A target that sends nothing for this long mid-body fails the response.
    timeout: Duration,
    /// Armed the first time a read has to wait, reset at each wait after.
    idle: Option<Pin<Box<Sleep>>>,
}

#[derive(Debug)]
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

impl UpstreamBody {
    pub(crate) fn new(
        connection: Connection,
        head: &ResponseHead,
        in_flight: InFlight,
        worker: usize,
        timeout: Duration,
    ) -> Self {
        let remaining = match head.framing {
            Framing::Empty => Remaining::Length(0),
            Framing::Length(length) => Remaining::Length(length),
            Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Remaining::UntilClose,
        };
        let mut body = Self {
            connection: Some(connection),
            remaining,
            keep_alive: head.keep_alive,
            in_flight: Some(in_flight),
            worker,
            timeout,
            idle: None,
        };
        if matches!(body.remaining, Remaining::Length(0)) {
            // hyper never polls an empty body: the exchange is over now.
            body.finish();
        }
        body
    }

    /// The body is complete: a connection with nothing unread goes back to the pool.
    fn finish(&mut self) {
        let (Some(connection), Some(in_flight)) = (self.connection.take(), self.in_flight.take())
        else {
            return;
        };
        if self.keep_alive && connection.read.is_empty() {
            in_flight.target().pool(self.worker).put(connection);
        }
    }

    /// The exchange failed: the connection is closed, the request no longer in flight.
    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.connection = None;
        self.in_flight = None;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            // Serve what is buffered, then read more.
            let data = match &mut this.remaining {
                Remaining::Length(0) => None,
                Remaining::Length(remaining) if !connection.read.is_empty() => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(connection.read.len());
                    *remaining -= take as u64;
                    Some(connection.read.split_to(take).freeze())
                }
                Remaining::Chunked(decoder) => match decoder.decode(&mut connection.read) {
                    Ok(Decoded::Data(data)) => Some(data),
                    Ok(Decoded::Done) => None,
                    Ok(Decoded::NeedMore) => Some(Bytes::new()),
                    Err(error) => {
                        return this.fail(io::Error::new(io::ErrorKind::InvalidData, error));
                    }
                },
                Remaining::UntilClose if !connection.read.is_empty() => {
                    Some(connection.read.split().freeze())
                }
                Remaining::Length(_) | Remaining::UntilClose => Some(Bytes::new()),
            };
            match data {
                Some(data) if !data.is_empty() => {
                    if matches!(this.remaining, Remaining::Length(0)) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(_need_more) => {}
                None => {
                    this.finish();
                    return Poll::Ready(None);
                }
            }
            connection.read.reserve(READ_SIZE);
            let polled = poll_read_buf(Pin::new(&mut connection.stream), cx, &mut connection.read);
            let Poll::Ready(read) = polled else {
                // Most bodies come with their head; a timer only for those that stall,
                // pushed back whenever bytes arrive.
                let timeout = this.timeout;
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(idle.as_mut().poll(cx));
                return this.fail(io::ErrorKind::TimedOut.into());
            };
            if let (Ok(1..), Some(idle)) = (&read, this.idle.as_mut()) {
                idle.as_mut().reset(Instant::now() + this.timeout);
            }
            match read {
                Ok(0) if matches!(this.remaining, Remaining::UntilClose) => {
                    // The end of this body; the connection cannot be reused.
                    this.keep_alive = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(error) => return this.fail(error),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.connection, &self.remaining) {
            (None, _) => SizeHint::with_exact(0),
            (Some(_), Remaining::Length(remaining)) => SizeHint::with_exact(*remaining),
            (Some(_), _) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// A request body the test feeds chunk by chunk.
    struct ChannelBody(mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
        }
    }

    /// A target that reads everything and never answers.
    async fn silent_target() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        });
        addr
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_request_body_times_out_one_timeout_after_its_last_chunk() {
        let timeout = Duration::from_secs(10);
        let target = Target::new(silent_target().await, CancellationToken::new(), 1);
        let mut connection = Connection::connect(&target, 0).await.unwrap();
        let (chunks, receiver) = mpsc::channel(1);
        let start = Instant::now();
        // A chunk at once, one 5 s later, then nothing (the sender stays open).
        let client = tokio::spawn(async move {
            chunks.send(Bytes::from_static(b"first")).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            chunks.send(Bytes::from_static(b"second")).await.unwrap();
            std::future::pending::<()>().await;
        });
        let result = connection
            .exchange_with_body(&Method::POST, &mut ChannelBody(receiver), true, timeout)
            .await;
        client.abort();
        assert!(matches!(result, Err(UpstreamError::Timeout)), "{result:?}");
        // 5 s + 10 s; the timer checking progress once per timeout made it 20 s.
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_secs(15)..Duration::from_secs(16)).contains(&elapsed),
            "{elapsed:?}"
        );
    }
}
