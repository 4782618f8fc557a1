//! Keep-alive connections to targets, one pool per target and worker thread.
//!
//! Our own pool rather than hyper-util's: it lives inside the target, so choosing a
//! connection needs no hashing or shared lock (each worker has its own, uncontended), and
//! the target can close every connection it has — which is how requests still in flight when
//! the deregistration delay ends fail, as on the ALB (S5.19).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::socket::{Shutdown, shutdown};
use tokio::net::TcpStream;

use super::upstream::Connection;

/// Idle connections kept per target and worker; more are closed when returned.
const MAX_IDLE: usize = 256;

/// One worker's connections to one target.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
    open: Arc<OpenSockets>,
}

#[derive(Debug)]
struct Idle {
    connection: Connection,
    since: Instant,
}

impl Pool {
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection younger than `idle_timeout`. Expired ones are
    /// closed, the oldest first, so a burst's connections do not linger after it.
    pub(crate) fn checkout(&self, idle_timeout: Duration) -> Option<Connection> {
        let now = Instant::now();
        let mut idle = self.idle();
        // Returned in order, so the expired ones are at the front.
        let expired = idle
            .iter()
            .take_while(|entry| now.duration_since(entry.since) >= idle_timeout)
            .count();
        idle.drain(..expired);
        idle.pop().map(|entry| entry.connection)
    }

    /// Returns a connection whose exchange is complete.
    pub(crate) fn put(&self, connection: Connection) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Registers a new connection's socket, so that [`Pool::close_all`] reaches it while it
    /// is busy in a worker.
    pub(crate) fn open(&self, stream: &TcpStream) -> OpenSocket {
        OpenSocket::new(Arc::clone(&self.open), stream.as_raw_fd())
    }

    /// Closes every connection, failing the requests still in flight on them (S5.19).
    pub(crate) fn close_all(&self) {
        // Dropped outside the lock: each drop unregisters its socket.
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
        for &(_, fd) in self.open.sockets().iter() {
            // The worker reading it sees end of file or a reset and fails the request.
            if let Err(error) = shutdown(fd, Shutdown::Both) {
                tracing::debug!(%error, "cannot shut a target connection down");
            }
        }
    }
}

/// The file descriptors of a pool's open connections, idle or busy.
#[derive(Debug, Default)]
struct OpenSockets {
    sockets: Mutex<Vec<(u64, RawFd)>>,
}

impl OpenSockets {
    fn sockets(&self) -> MutexGuard<'_, Vec<(u64, RawFd)>> {
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's entry in its pool's open sockets.
///
/// It must be dropped before the socket is closed: the entry is removed under the same lock
/// that [`Pool::close_all`] holds while it shuts sockets down, so a descriptor number is never
/// shut down after the kernel has given it to another socket.
#[derive(Debug)]
pub(crate) struct OpenSocket {
    owner: Arc<OpenSockets>,
    id: u64,
}

impl OpenSocket {
    fn new(owner: Arc<OpenSockets>, fd: RawFd) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        owner.sockets().push((id, fd));
        Self { owner, id }
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut sockets = self.owner.sockets();
        if let Some(at) = sockets.iter().position(|&(id, _)| id == self.id) {
            sockets.swap_remove(at);
        }
    }
}
