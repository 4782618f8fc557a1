//! Supervision of the local PostgreSQL, as a task is supervised: when the postmaster dies
//! (kill -9, OOM killer), berth starts it again on the same port, and PostgreSQL's crash
//! recovery replays its WAL, so every committed row is still there. The API keeps its pool
//! and reconnects; its readiness (`/api/health/ready`) follows the database.
//!
//! A restart loop backs off as a failing task does (1 s, doubling, at most 15 min): a
//! restart attempt that fails, or a server that dies again less than [`STABLE_AFTER`] after
//! berth restarted it, counts as one more consecutive failure; a server that stayed up that
//! long starts the count again, so an isolated crash is repaired at once.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Mutex, broadcast};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RuntimeEvent;
use crate::database::{
    DatabaseEvent, DatabaseState, DatabaseStatus, DatabaseStatusView, LocalPostgres, process_exited,
};
use crate::service::Backoff;

/// How long a restarted server must stay up for its next death to count as a new incident
/// rather than as part of a restart loop.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The supervised database's state, shared by the supervisor, `berth status` and the stop.
#[derive(Debug)]
pub struct Supervision {
    view: StdMutex<DatabaseStatusView>,
    /// Cancelled before a deliberate stop: a server berth stops is not restarted.
    stop: CancellationToken,
}

impl Supervision {
    pub fn new(view: DatabaseStatusView) -> Self {
        Self {
            view: StdMutex::new(view),
            stop: CancellationToken::new(),
        }
    }

    pub fn view(&self) -> DatabaseStatusView {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut DatabaseStatusView)) {
        change(&mut self.view.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Ends supervision (before berth stops the server itself).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn set_state(&self, state: DatabaseState) {
        self.update(|view| {
            view.state = state;
            if state == DatabaseState::Stopped {
                view.pid = None;
            }
        });
    }

    /// Records an event (the status's last event) and sends it to the CLI.
    fn event(&self, events: &broadcast::Sender<RuntimeEvent>, message: String) {
        let mut name = String::new();
        self.update(|view| {
            name = view.name.clone();
            view.last_event = Some(DatabaseEvent {
                created_at: Utc::now(),
                message: message.clone(),
            });
        });
        tracing::info!(database = %name, "{message}");
        let _ = events.send(RuntimeEvent::Database {
            message: format!("(database {name}) {message}"),
        });
    }
}

/// Watches the postmaster and restarts it when it dies, until [`Supervision::stop`].
pub async fn supervise(
    local: Arc<Mutex<LocalPostgres>>,
    supervision: Arc<Supervision>,
    events: broadcast::Sender<RuntimeEvent>,
) {
    let stop = supervision.stop.clone();
    // When berth last restarted it (the first start is not a restart).
    let mut restarted_at: Option<Instant> = None;
    let mut failures = 0u32;
    loop {
        let running = match local.lock().await.status() {
            DatabaseStatus::Running { pid, .. } => Some(pid),
            _ => None,
        };
        let gone = match running {
            Some(pid) => {
                supervision.update(|view| view.pid = Some(pid));
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = process_exited(pid) => {}
                }
                if stop.is_cancelled() {
                    return;
                }
                format!("the PostgreSQL server (pid {pid}) exited unexpectedly")
            }
            // Died before supervision began (or someone stopped it behind berth's back).
            None => "the PostgreSQL server is not running".to_owned(),
        };
        failures = failures_after_death(restarted_at, failures, Instant::now());
        supervision.update(|view| {
            view.state = DatabaseState::Rebooting;
            view.pid = None;
        });
        let delay = Backoff::delay(failures);
        let when = if delay.is_zero() {
            String::new()
        } else {
            format!(" (a restart loop: next attempt in {}s)", delay.as_secs())
        };
        supervision.event(
            &events,
            format!("{gone}: recovery of the DB instance has started{when}"),
        );
        // Restart attempts, backing off while they fail.
        loop {
            let delay = Backoff::delay(failures);
            if !delay.is_zero() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            let mut postgres = local.lock().await;
            if stop.is_cancelled() {
                return;
            }
            match postgres.restart().await {
                Ok(port) => {
                    restarted_at = Some(Instant::now());
                    supervision.update(|view| {
                        view.state = DatabaseState::Available;
                        view.port = port;
                        view.restarts += 1;
                    });
                    supervision.event(
                        &events,
                        format!(
                            "DB instance restarted: recovery is complete, accepting connections on port {port}"
                        ),
                    );
                    break;
                }
                Err(error) => {
                    failures += 1;
                    supervision.event(
                        &events,
                        format!(
                            "unable to restart the DB instance ({}); next attempt in {}s",
                            error_chain(&error),
                            Backoff::delay(failures).as_secs()
                        ),
                    );
                }
            }
        }
    }
}

/// Consecutive failures once the server died: one more when it died less than
/// [`STABLE_AFTER`] after berth restarted it (a restart loop), none after a server that
/// stayed up (an isolated crash is repaired at once).
fn failures_after_death(restarted_at: Option<Instant>, failures: u32, now: Instant) -> u32 {
    match restarted_at {
        Some(at) if now.duration_since(at) < STABLE_AFTER => failures + 1,
        _ => 0,
    }
}

/// An error with its causes, on one line (an event is one line).
fn error_chain(error: &dyn std::error::Error) -> String {
    let text = crate::error_chain(error);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_loop_backs_off_and_a_server_that_stayed_up_starts_over() {
        let start = Instant::now();
        // The first death (berth never restarted it): at once.
        assert_eq!(failures_after_death(None, 0, start), 0);
        // Died again 5 s after a restart: one more failure each time, so 1 s, 2 s, 4 s...
        let restarted = start;
        let soon = restarted + Duration::from_secs(5);
        assert_eq!(failures_after_death(Some(restarted), 0, soon), 1);
        assert_eq!(failures_after_death(Some(restarted), 3, soon), 4);
        assert_eq!(Backoff::delay(4), Duration::from_secs(8));
        // Stayed up past STABLE_AFTER: a new incident, repaired at once.
        let later = restarted + STABLE_AFTER;
        assert_eq!(failures_after_death(Some(restarted), 7, later), 0);
    }
}
