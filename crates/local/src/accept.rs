//! What every accept loop does when `accept(2)` fails: wait before the next try, longer
//! each time, and log through [`Repeated`] so that a lasting failure costs one line per
//! window, not one per loop.
//!
//! `EMFILE` and `ENFILE` (out of file descriptors) are the usual cause, and the worst: the
//! pending connection stays in the backlog, so the next `accept` fails again at once and a
//! loop without a pause spins at 100% CPU writing a line per turn. The pause doubles from
//! [`FIRST_PAUSE`] to [`MAX_PAUSE`] (nginx pauses 500 ms, HAProxy up to 1 s) and resets at
//! the first success. Other errors (`ECONNABORTED`: the peer gave up before we accepted)
//! pause too: a pause of 10 ms after a rare error costs nothing, and no error can spin.

use std::io;
use std::time::{Duration, Instant};

use crate::repeated::{self, Repeated, Verdict};

/// The pause after the first failure in a row.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(1);

/// The failure state of one accept loop.
#[derive(Debug)]
pub(crate) struct AcceptErrors {
    /// What accepts: "load balancer", "control socket".
    what: &'static str,
    pause: Duration,
    log: Repeated,
}

impl AcceptErrors {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            pause: FIRST_PAUSE,
            log: Repeated::default(),
        }
    }

    /// `accept` failed with `error`: logs it unless it is a repeat inside the window, and
    /// returns how long to wait before accepting again.
    pub(crate) fn failed(&mut self, error: &io::Error) -> Duration {
        let what = self.what;
        match self.log.occurred(Instant::now()) {
            Verdict::First => tracing::warn!(%error, "{what}: cannot accept a connection"),
            Verdict::Repeated { times, over } => tracing::warn!(
                %error,
                "{what}: cannot accept a connection (repeated {times} times in the last {}s)",
                repeated::seconds(over)
            ),
            Verdict::Suppress => {}
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        pause
    }

    /// `accept` succeeded: the next failure pauses briefly again; failures not logged yet
    /// are summed up in one line.
    pub(crate) fn accepted(&mut self) {
        // The common case costs one comparison.
        if !self.log.is_ongoing() {
            return;
        }
        self.pause = FIRST_PAUSE;
        if let Some((times, over)) = self.log.ended(Instant::now()) {
            let what = self.what;
            tracing::warn!(
                "{what}: cannot accept a connection (repeated {times} times in the last {}s, now accepting again)",
                repeated::seconds(over)
            );
        }
    }
}

/// Waits `pause`, or less if `stop` fires first.
pub(crate) async fn pause(pause: Duration, stop: &tokio_util::sync::CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(pause) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_maximum_and_reset_on_success() {
        let mut errors = AcceptErrors::new("test");
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(&emfile)).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), MAX_PAUSE);
        assert!(pauses.windows(2).all(|p| p[0] <= p[1]));
        errors.accepted();
        assert_eq!(errors.failed(&emfile), FIRST_PAUSE);
    }
}
