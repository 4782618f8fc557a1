//! Keep-alive connections to targets, one pool per target and worker thread.
//!
//! Our own pool rather than hyper-util's: it lives inside the target, so choosing a
//! connection needs no hashing or shared lock (each worker has its own, uncontended), and
//! the target can close every connection it has — which is how requests still in flight when
//! the deregistration delay ends fail, as on the ALB (S5.19).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use super::target_group::Target;

/// Connecting to a target longer than this is a 504 (S5.12).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept per target and worker; more are closed when returned.
const MAX_IDLE: usize = 256;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("connection refused or failed")]
    Connect(#[source] std::io::Error),
    #[error("connecting took longer than {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("http handshake failed")]
    Handshake(#[source] hyper::Error),
    #[error("the exchange with the target failed")]
    Exchange(#[source] hyper::Error),
}

impl UpstreamError {
    /// Whether the ALB would answer 504 rather than 502 (S5.11, S5.12).
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, Self::ConnectTimeout)
    }
}

/// One worker's idle connections to one target.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
    /// The tasks driving this worker's connections to the target, idle or busy.
    connections: Mutex<Vec<AbortHandle>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

impl Pool {
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection younger than `idle_timeout`.
    fn checkout(&self, idle_timeout: Duration) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle();
        while let Some(entry) = idle.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < idle_timeout {
                return Some(entry.sender);
            }
        }
        None
    }

    fn track(&self, connection: AbortHandle) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections.retain(|task| !task.is_finished());
        connections.push(connection);
    }

    /// Closes every connection, failing the requests still in flight on them (S5.19).
    pub(crate) fn close_all(&self) {
        self.idle().clear();
        for task in self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }

    /// Returns a connection whose exchange is complete.
    pub(crate) fn put(&self, sender: SendRequest<Incoming>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// Sends `request` to `target` over an idle connection of `worker`'s pool, or a new one;
/// returns the response and the connection, to give back with [`Pool::put`] once the
/// response body is complete (or to drop, which closes it).
///
/// A pooled connection that the target closed while idle gives the request back unsent, and
/// the next connection is tried, so a keep-alive race does not become a 502.
pub(crate) async fn send(
    target: &Target,
    worker: usize,
    idle_timeout: Duration,
    mut request: Request<Incoming>,
) -> Result<(Response<Incoming>, SendRequest<Incoming>), UpstreamError> {
    let pool = target.pool(worker);
    while let Some(mut sender) = pool.checkout(idle_timeout) {
        // Usually immediate: the connection signals readiness once its last exchange ended.
        if sender.ready().await.is_err() {
            continue;
        }
        match sender.try_send_request(request).await {
            Ok(response) => return Ok((response, sender)),
            Err(mut error) => match error.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(UpstreamError::Exchange(error.into_error())),
            },
        }
    }
    let mut sender = connect(target, worker).await?;
    match sender.send_request(request).await {
        Ok(response) => Ok((response, sender)),
        Err(error) => Err(UpstreamError::Exchange(error)),
    }
}

/// Opens a connection to `target`, driven by a task that ends when the connection closes or
/// the target closes all its connections ([`Pool::close_all`]).
async fn connect(target: &Target, worker: usize) -> Result<SendRequest<Incoming>, UpstreamError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, target = %target.addr, "cannot disable Nagle's algorithm");
    }
    // One buffer and write(2) per request, as on the client side (see `proxy::serve`).
    let (sender, connection) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(UpstreamError::Handshake)?;
    let addr = target.addr;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, target = %addr, "target connection ended with an error");
        }
    });
    // Abortable rather than racing a cancellation signal: nothing extra runs per poll.
    target.pool(worker).track(task.abort_handle());
    Ok(sender)
}
