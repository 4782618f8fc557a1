//! Task state vocabulary: ECS's names for statuses, stop codes and health (ECS-SEMANTICS §4).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A task id as ECS shows it: the last segment of the task ARN, 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for TaskId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for TaskId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `lastStatus` (S4.1). Locally PROVISIONING and DEPROVISIONING have nothing to do (no ENI)
/// and pass at once, but keep their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn is_stopped(self) -> bool {
        self == Self::Stopped
    }

    /// Not yet RUNNING: PROVISIONING, PENDING or ACTIVATING.
    pub fn is_starting(self) -> bool {
        self < Self::Running
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `desiredStatus` (S4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl fmt::Display for DesiredStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        })
    }
}

/// `stopCode` (S4.6), the values that have a local meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
}

impl fmt::Display for StopCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TaskFailedToStart => "TaskFailedToStart",
            Self::EssentialContainerExited => "EssentialContainerExited",
            Self::UserInitiated => "UserInitiated",
            Self::ServiceSchedulerInitiated => "ServiceSchedulerInitiated",
        })
    }
}

/// `stoppedReason` texts (S4.7), ECS's exact wording.
pub mod reasons {
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";
    pub const FAILED_CONTAINER_HEALTH_CHECKS: &str = "Task failed container health checks";

    pub fn failed_elb_health_checks(target_group: &str) -> String {
        format!("Task failed ELB health checks in (target-group {target_group})")
    }

    pub fn scaling_activity(deployment_id: &str) -> String {
        format!("Scaling activity initiated by (deployment {deployment_id})")
    }

    /// The reason a user's stop (`berth down`) records.
    pub const USER_STOPPED: &str = "Task stopped by user (berth down)";
}

/// Container / task `healthStatus` (S4.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Healthy => "HEALTHY",
            Self::Unhealthy => "UNHEALTHY",
            Self::Unknown => "UNKNOWN",
        })
    }
}

/// What `berth status` shows of a task, and what the scheduler observes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSnapshot {
    pub task_id: TaskId,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub health_status: HealthStatus,
    /// The port berth chose for the task (`PORT`); 0 when it never got one.
    pub port: u16,
    /// Process id, also the process group id (the task leads its own group).
    pub pid: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopping_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// The process's exit status; 128 + n when it died of signal n (137 for SIGKILL, S4.8).
    pub exit_code: Option<i32>,
}

impl TaskSnapshot {
    pub fn provisioning(task_id: TaskId, port: u16) -> Self {
        Self {
            task_id,
            last_status: TaskStatus::Provisioning,
            desired_status: DesiredStatus::Running,
            health_status: HealthStatus::Unknown,
            port,
            pid: None,
            created_at: Utc::now(),
            started_at: None,
            stopping_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            exit_code: None,
        }
    }

    /// The end of the lifecycle (→ STOPPED). A stop code and reason recorded earlier (when
    /// the stop was requested) win over the ones given here.
    pub fn finish(&mut self, code: StopCode, reason: String, exit_code: Option<i32>) {
        self.last_status = TaskStatus::Stopped;
        self.desired_status = DesiredStatus::Stopped;
        self.stop_code.get_or_insert(code);
        self.stopped_reason.get_or_insert(reason);
        self.exit_code = exit_code;
        self.stopped_at = Some(Utc::now());
        self.pid = None;
    }
}
