//! The listener's idle timeout (S5.14): a client connection on which no byte has been
//! received or sent for that long is closed, whatever stage it is in — nothing sent yet,
//! part of a request head or of the h2c preface, an HTTP/2 connection with no stream, a
//! kept-alive HTTP/1.1 connection between requests, or a request whose target is silent.
//!
//! Watching bytes rather than protocol states is what makes "whatever stage" hold: hyper's
//! own timers cover only some stages (HTTP/1.1 head reads), and none covers the version
//! detection of h2c or an idle HTTP/2 connection.
//!
//! Cost on the request path: one relaxed store of `true` per read or write that moved
//! bytes (no lock, no system call, no clock read). The watcher wakes four times per
//! timeout, so a connection closes between 1 and 1.25 idle timeouts after its last byte.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Watcher wake-ups per idle timeout.
const TICKS: u32 = 4;

/// A client connection's socket that notes whether bytes moved.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    io: T,
    active: Arc<AtomicBool>,
}

impl<T> Watched<T> {
    /// Wraps `io`; [`Watched::activity`] gives the flag [`expired`] watches.
    pub(crate) fn new(io: T) -> Self {
        Self {
            io,
            active: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn activity(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.active)
    }

    fn moved(&self) {
        self.active.store(true, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        // End of stream counts too: hyper closes the connection then anyway.
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.moved();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(1..))) {
            this.moved();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(1..))) {
            this.moved();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Resolves once no byte has moved on the connection whose flag is `active` for `timeout`
/// (give or take a quarter of it).
pub(crate) async fn expired(active: &AtomicBool, timeout: Duration) {
    let tick = (timeout / TICKS).max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    // A late tick (a busy worker) must not count as several quiet ones.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = 0;
    while quiet < TICKS {
        ticks.tick().await;
        quiet = if active.swap(false, Ordering::Relaxed) {
            0
        } else {
            quiet + 1
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_expires_after_the_timeout() {
        let active = AtomicBool::new(false);
        let start = tokio::time::Instant::now();
        expired(&active, Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_moving_push_the_expiry_back() {
        let active = Arc::new(AtomicBool::new(false));
        let start = tokio::time::Instant::now();
        let mover = {
            let active = Arc::clone(&active);
            tokio::spawn(async move {
                // A byte every 40 s for two minutes, then silence.
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_secs(40)).await;
                    active.store(true, Ordering::Relaxed);
                }
            })
        };
        expired(&active, Duration::from_secs(60)).await;
        mover.await.unwrap();
        // The last byte at 120 s; closed 60 to 75 s after it.
        let elapsed = start.elapsed();
        assert!(
            (Duration::from_secs(180)..=Duration::from_secs(195)).contains(&elapsed),
            "{elapsed:?}"
        );
    }
}
