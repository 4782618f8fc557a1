//! The database as `berth status` shows it: one line, in RDS's words.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The state of the stack's PostgreSQL, named as RDS names a DB instance's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseState {
    /// Running and accepting connections.
    Available,
    /// The server died and berth is starting it again (crash recovery).
    Rebooting,
    Stopping,
    Stopped,
}

impl std::fmt::Display for DatabaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Available => "available",
            Self::Rebooting => "rebooting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        })
    }
}

/// Something that happened to the database (what RDS lists as events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEvent {
    pub created_at: DateTime<Utc>,
    pub message: String,
}

/// The database line of `berth status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatusView {
    /// The database's name (`fileanalyzer`).
    pub name: String,
    pub state: DatabaseState,
    pub port: u16,
    /// The postmaster's pid while it runs.
    pub pid: Option<u32>,
    /// How many times berth restarted it after it died.
    pub restarts: u32,
    pub last_event: Option<DatabaseEvent>,
}
