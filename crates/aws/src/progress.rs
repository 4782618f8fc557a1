//! What the engine reports while it works; the CLI renders it (this crate never prints).

use std::sync::Arc;
use std::time::Duration;

use crate::resource::{Id, Kind};

/// One thing that happened during `up` or `down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step began (`action`: create, update or delete).
    Started {
        id: Id,
        kind: Kind,
        name: String,
        action: &'static str,
    },
    /// A step is waiting for AWS (a NAT gateway to be available, a service to be stable).
    Waiting {
        id: Id,
        what: String,
        elapsed: Duration,
    },
    /// A step finished.
    Finished {
        id: Id,
        action: &'static str,
        elapsed: Duration,
    },
    /// A step failed; the run stops launching new steps and reports the first error.
    Failed { id: Id, action: &'static str },
}

/// The receiver of events (called from the engine's tasks, so `Send + Sync`).
pub type Progress = Arc<dyn Fn(Event) + Send + Sync>;

/// A receiver that drops every event.
pub fn silent() -> Progress {
    Arc::new(|_| {})
}
