//! Service state vocabulary: deployments, rollout state, events, target health as the
//! scheduler sees it (ECS-SEMANTICS §1–§2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use crate::task::TaskSnapshot;

/// `deploymentConfiguration` bounds (S1.2–S1.8). Defaults are REPLICA's: 100 / 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
}

impl Default for DeploymentConfiguration {
    fn default() -> Self {
        Self {
            minimum_healthy_percent: 100,
            maximum_percent: 200,
        }
    }
}

impl DeploymentConfiguration {
    /// Tasks that must stay healthy: `ceil(desired × min / 100)` (S1.2).
    pub fn min_healthy(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.minimum_healthy_percent)).div_ceil(100) as u32
    }

    /// Tasks allowed at once: `floor(desired × max / 100)` (S1.4).
    pub fn max_tasks(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.maximum_percent) / 100) as u32
    }
}

/// `deploymentCircuitBreaker` (S2.1): with the default threshold (S2.3) and the consecutive
/// count (`resetOnHealthyTask`, S2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

impl CircuitBreaker {
    /// `min(200, max(3, ceil(0.5 × desired)))` (S2.3).
    pub fn threshold(desired: u32) -> u32 {
        desired.div_ceil(2).clamp(3, 200)
    }
}

pub use berth_spec::status::{DeploymentStatus, DeploymentStrategy, RolloutState};

/// One deployment of a service: a task definition revision being rolled out (S2.9–S2.14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` followed by 19 digits (S1.25).
    pub id: String,
    pub status: DeploymentStatus,
    /// What the tasks run: `<family>:<revision>` plus the image it resolves to.
    pub task_definition: String,
    pub image: String,
    pub strategy: DeploymentStrategy,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    /// It returns to an earlier revision after a failure or `berth rollback` (it is then not
    /// itself a release to roll back to).
    #[serde(default)]
    pub rollback: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it COMPLETED or FAILED.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// A traffic-shifting deployment's stage (`ServiceDeployment.lifecycleStage`, S3.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
}

impl Deployment {
    /// A new PRIMARY deployment, IN_PROGRESS.
    pub fn new_primary(task_definition: String, image: String, desired_count: u32) -> Self {
        let id = new_deployment_id();
        let now = Utc::now();
        Self {
            rollout_state_reason: format!("ECS deployment {id} in progress."),
            id,
            status: DeploymentStatus::Primary,
            task_definition,
            image,
            strategy: DeploymentStrategy::Rolling,
            desired_count,
            pending_count: 0,
            running_count: 0,
            failed_tasks: 0,
            rollout_state: RolloutState::InProgress,
            rollback: false,
            created_at: now,
            updated_at: now,
            finished_at: None,
            lifecycle_stage: None,
        }
    }

    pub fn complete(&mut self) {
        if self.rollout_state != RolloutState::Completed {
            self.rollout_state = RolloutState::Completed;
            self.rollout_state_reason = format!("ECS deployment {} completed.", self.id);
            self.updated_at = Utc::now();
            self.finished_at = Some(self.updated_at);
        }
    }

    /// FAILED with `reason` (S2.9–S2.10).
    pub fn fail(&mut self, reason: String) {
        self.rollout_state = RolloutState::Failed;
        self.rollout_state_reason = reason;
        self.updated_at = Utc::now();
        self.finished_at = Some(self.updated_at);
    }
}

/// `ecs-svc/` and a 19-digit number, as ECS names deployments.
pub fn new_deployment_id() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

pub use berth_spec::status::TargetState;

/// One target's health: state, reason code and description (S5.1–S5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealthView {
    pub target: SocketAddr,
    pub state: TargetState,
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// The share of one listener rule's traffic that a target group receives (`berth status`
/// shows each target group's weight; blue/green, canary and linear move it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleWeight {
    /// `default` or `priority N`.
    pub rule: String,
    /// The group's weight in the rule's forward action (0–999, S5.29).
    pub weight: u32,
    /// Its share of the rule's requests, 0–100.
    pub percent: f64,
}

/// Why the scheduler decided a task is unhealthy; sticky once decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UnhealthyCause {
    /// The target group's health check failed (its description, e.g. `Request timed out`).
    TargetGroup {
        target_group: String,
        port: u16,
        description: String,
    },
    /// The container health check reported UNHEALTHY.
    ContainerHealthCheck,
}

/// A service event, as DescribeServices lists them (newest first in `berth status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub created_at: DateTime<Utc>,
    pub message: String,
}

/// A service event as the controller publishes it, for whoever renders progress (the
/// runtime maps it onto its own event type: the scheduler knows nothing above it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceNotice {
    pub service: String,
    pub message: String,
}

/// One task of a service in `berth status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTaskStatus {
    #[serde(flatten)]
    pub task: TaskSnapshot,
    pub deployment_id: String,
    /// The revision it runs (`<family>:<n>`).
    pub task_definition: String,
    pub target_health: Option<TargetHealthView>,
}

/// A service in `berth status` (DescribeServices' shape, trimmed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub service_name: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub target_group: Option<String>,
    pub health_check_grace_period_seconds: u64,
    pub deployment_configuration: DeploymentConfiguration,
    pub steady_state: bool,
    pub deployments: Vec<Deployment>,
    /// Live tasks, then recently stopped ones.
    pub tasks: Vec<ServiceTaskStatus>,
    /// Newest first, at most 100 (S2.19).
    pub events: Vec<ServiceEvent>,
    /// Its scalable target and policy, with the recent activities (the runtime's scaler
    /// fills it in).
    #[serde(default)]
    pub autoscaling: Option<AutoscalingStatus>,
}

/// A service's target tracking as `berth status` shows it (S6.1–S6.2, S6.11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingStatus {
    pub min_capacity: u32,
    pub max_capacity: u32,
    /// The predefined metric's name (`ECSServiceAverageCPUUtilization`, ...).
    pub metric: String,
    pub target_value: f64,
    pub scale_out_cooldown_seconds: f64,
    pub scale_in_cooldown_seconds: f64,
    /// The latest datapoint, if there was data.
    pub last_datapoint: Option<f64>,
    /// Newest first.
    pub activities: Vec<ScalingActivity>,
}

/// One scaling activity (Application Auto Scaling's DescribeScalingActivities, trimmed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingActivity {
    pub at: DateTime<Utc>,
    pub from: u32,
    pub to: u32,
    /// `Setting desired count to 3.`
    pub description: String,
    /// Which alarm fired, with the datapoint.
    pub cause: String,
}
