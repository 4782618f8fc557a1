//! The supervisor that owns everything `berth up` starts.

use serde::{Deserialize, Serialize};

/// Progress of the runtime, for the CLI to render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuntimeEvent {
    /// A service event (ECS wording).
    Service { service: String, message: String },
}
