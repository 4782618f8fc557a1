//! Throttling of tasks that fail to start (S1.18–S1.19): the wait between start attempts
//! doubles after each consecutive failure, up to 15 minutes; a healthy task resets it.

use std::time::Duration;

use tokio::time::Instant;

/// The first wait after a failure.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// ECS never waits longer than this between attempts.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Consecutive failures after which the service reports it cannot start tasks.
pub const REPORT_AFTER: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct Backoff {
    consecutive_failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// The wait after `failures` consecutive failures.
    pub fn delay(failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(20);
        FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
    }

    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive_failures += 1;
        self.retry_at = Some(now + Self::delay(self.consecutive_failures));
    }

    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.retry_at = None;
    }

    /// Whether starts are held back at `now`.
    pub fn throttled(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    /// When starts are allowed again, if a failure holds them back (or did).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_fifteen_minutes() {
        assert_eq!(Backoff::delay(0), Duration::ZERO);
        assert_eq!(Backoff::delay(1), Duration::from_secs(1));
        assert_eq!(Backoff::delay(2), Duration::from_secs(2));
        assert_eq!(Backoff::delay(5), Duration::from_secs(16));
        assert_eq!(Backoff::delay(11), Duration::from_secs(900));
        assert_eq!(Backoff::delay(1000), Duration::from_secs(900));
    }

    #[test]
    fn success_resets() {
        let now = Instant::now();
        let mut b = Backoff::default();
        b.record_failure(now);
        assert!(b.throttled(now));
        assert!(!b.throttled(now + Duration::from_secs(2)));
        b.record_success();
        assert!(!b.throttled(now));
        assert_eq!(b.consecutive_failures(), 0);
    }
}
