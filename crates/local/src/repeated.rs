//! Coalescing of a log line that could otherwise repeat without limit.
//!
//! An accept loop that fails with `EMFILE` fails again at once, as fast as it can loop: one
//! line per failure once wrote 15.7 million lines (2 GB) in 22 s. [`Repeated`] lets the
//! first occurrence through, counts the following ones, and lets one through per window
//! with the count ("... (repeated 1234 times in the last 10s)"), so a condition that lasts
//! costs one line per window however fast it recurs. It takes the clock as an argument, so
//! its decisions are table-tested without waiting.

use std::time::{Duration, Instant};

/// How often a repeated line may be written at most.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Whether to write an occurrence, and what to say about the ones not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it: the first occurrence since the condition began (or was last reported
    /// over).
    First,
    /// Write it with the number of occurrences (this one included) since the last line
    /// written, `over` that long.
    Repeated {
        /// Occurrences since the last line written, this one included.
        times: u64,
        /// Time since the last line written.
        over: Duration,
    },
    /// Count it, write nothing.
    Suppress,
}

/// The state of one kind of repeated line.
#[derive(Debug, Default)]
pub(crate) struct Repeated {
    /// When the last line was written, if the condition is ongoing.
    last_written: Option<Instant>,
    /// Occurrences since then that were not written.
    suppressed: u64,
}

impl Repeated {
    /// One more occurrence at `now`.
    pub(crate) fn occurred(&mut self, now: Instant) -> Verdict {
        match self.last_written {
            None => {
                self.last_written = Some(now);
                Verdict::First
            }
            Some(since) if now.saturating_duration_since(since) >= WINDOW => {
                let times = self.suppressed + 1;
                self.last_written = Some(now);
                self.suppressed = 0;
                Verdict::Repeated {
                    times,
                    over: now.saturating_duration_since(since),
                }
            }
            Some(_) => {
                self.suppressed += 1;
                Verdict::Suppress
            }
        }
    }

    /// The condition is over (the accept succeeded): returns the occurrences not written
    /// yet, if any, and since when they were counted; the next occurrence is a first again.
    pub(crate) fn ended(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let since = self.last_written.take()?;
        let suppressed = std::mem::take(&mut self.suppressed);
        (suppressed > 0).then(|| (suppressed, now.saturating_duration_since(since)))
    }

    /// Whether an occurrence is being counted (the cheap check before [`Self::ended`]).
    pub(crate) fn is_ongoing(&self) -> bool {
        self.last_written.is_some()
    }
}

/// "in the last 10s", rounded to whole seconds (at least 1) for reading.
pub(crate) fn seconds(over: Duration) -> u64 {
    over.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_writes_one_line_per_window_with_the_count() {
        let start = Instant::now();
        let mut repeated = Repeated::default();
        let mut written = Vec::new();
        // 100,000 failures over 25 s, as fast as an accept loop without back-off fails.
        for i in 0..100_000u64 {
            let now = start + Duration::from_micros(i * 250);
            match repeated.occurred(now) {
                Verdict::Suppress => {}
                verdict => written.push(verdict),
            }
        }
        assert_eq!(
            written,
            [
                Verdict::First,
                Verdict::Repeated {
                    times: 40_000,
                    over: WINDOW
                },
                Verdict::Repeated {
                    times: 40_000,
                    over: WINDOW
                },
            ]
        );
        // The 19,999 after the last line are reported when the condition ends.
        let end = start + Duration::from_secs(25);
        assert_eq!(repeated.ended(end), Some((19_999, Duration::from_secs(5))));
        assert!(!repeated.is_ongoing());
        assert_eq!(repeated.occurred(end), Verdict::First);
    }

    #[test]
    fn a_single_occurrence_reports_nothing_when_it_ends() {
        let now = Instant::now();
        let mut repeated = Repeated::default();
        assert_eq!(repeated.ended(now), None);
        assert_eq!(repeated.occurred(now), Verdict::First);
        assert_eq!(repeated.ended(now), None);
        assert_eq!(repeated.occurred(now), Verdict::First);
    }

    #[test]
    fn occurrences_a_window_apart_are_each_written() {
        let start = Instant::now();
        let mut repeated = Repeated::default();
        assert_eq!(repeated.occurred(start), Verdict::First);
        assert_eq!(
            repeated.occurred(start + WINDOW),
            Verdict::Repeated {
                times: 1,
                over: WINDOW
            }
        );
    }
}
