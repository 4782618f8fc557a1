//! Status vocabulary shared by the runtimes and the CLI: what the embedded runtime and the
//! AWS engine both report, in AWS's own words: target health, deployment status, rollout
//! state, deployment strategy.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A load-balancer target's health state, as `DescribeTargetHealth` reports it
/// (ECS-SEMANTICS §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    /// Registered, health checks not yet passed `healthy_threshold` times.
    Initial,
    /// Passing health checks; receives traffic.
    Healthy,
    /// Failed `unhealthy_threshold` consecutive checks; receives traffic only when the whole
    /// group is unhealthy (fail-open).
    Unhealthy,
    /// Not registered any more (after draining).
    Unused,
    /// Deregistered; in-flight requests finish, no new ones arrive.
    Draining,
    /// Health checks are disabled.
    Unavailable,
}

impl TargetState {
    /// The state's name as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unused => "unused",
            Self::Draining => "draining",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for TargetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deployment `status` (S2.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Primary,
    Active,
    Inactive,
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "PRIMARY",
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        })
    }
}

/// `rolloutState` (S2.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

impl fmt::Display for RolloutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        })
    }
}

/// How a deployment replaces tasks (S3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStrategy {
    #[default]
    Rolling,
    BlueGreen,
    Linear,
    Canary,
}

impl fmt::Display for DeploymentStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rolling => "ROLLING",
            Self::BlueGreen => "BLUE_GREEN",
            Self::Linear => "LINEAR",
            Self::Canary => "CANARY",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{DeploymentStatus, RolloutState, TargetState};

    #[test]
    fn deployment_words_serialize_as_ecs_spells_them() {
        for (status, text) in [
            (DeploymentStatus::Primary, "PRIMARY"),
            (DeploymentStatus::Active, "ACTIVE"),
            (DeploymentStatus::Inactive, "INACTIVE"),
        ] {
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(status.to_string(), text);
        }
        for (state, text) in [
            (RolloutState::InProgress, "IN_PROGRESS"),
            (RolloutState::Completed, "COMPLETED"),
            (RolloutState::Failed, "FAILED"),
        ] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(state.to_string(), text);
        }
    }

    #[test]
    fn states_serialize_as_aws_spells_them() {
        for state in [
            TargetState::Initial,
            TargetState::Healthy,
            TargetState::Unhealthy,
            TargetState::Unused,
            TargetState::Draining,
            TargetState::Unavailable,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<TargetState>(&json).unwrap(), state);
        }
    }
}
