use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::duration::serde_duration;

/// Where an environment runs the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The embedded runtime on this machine.
    Local,
    /// AWS ECS Fargate.
    Aws,
}

/// One `[environments.<name>]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Environment {
    pub name: String,
    #[serde(flatten)]
    pub kind: EnvironmentKind,
}

/// The runtime-specific settings of an environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "runtime", rename_all = "snake_case")]
pub enum EnvironmentKind {
    Local(LocalEnvironment),
    Aws(AwsEnvironment),
}

impl Environment {
    pub fn runtime(&self) -> Runtime {
        match self.kind {
            EnvironmentKind::Local(_) => Runtime::Local,
            EnvironmentKind::Aws(_) => Runtime::Aws,
        }
    }

    pub fn as_local(&self) -> Option<&LocalEnvironment> {
        match &self.kind {
            EnvironmentKind::Local(local) => Some(local),
            EnvironmentKind::Aws(_) => None,
        }
    }

    pub fn as_aws(&self) -> Option<&AwsEnvironment> {
        match &self.kind {
            EnvironmentKind::Aws(aws) => Some(aws),
            EnvironmentKind::Local(_) => None,
        }
    }
}

/// The embedded runtime's settings.
///
/// The health-check and draining values here replace the services' AWS values when the stack
/// runs locally: AWS's 30 s interval would make a local start take minutes. They are the one
/// deliberate difference between local and AWS behaviour, and `berth explain` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalEnvironment {
    /// The embedded load balancer's listener (the ALB's HTTP listener stands here).
    pub listen: SocketAddr,
    /// Directory of the runtime's state (registry, parameters, logs, database), relative
    /// to the stack file's directory.
    pub state_dir: std::path::PathBuf,
    #[serde(with = "serde_duration")]
    pub health_check_interval: Duration,
    #[serde(with = "serde_duration")]
    pub health_check_timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    #[serde(with = "serde_duration")]
    pub deregistration_delay: Duration,
    /// The most a log group keeps on disk locally, in MiB; the oldest events go first.
    /// CloudWatch has no such cap (it bills per GB instead): a chatty task must not fill the
    /// disk of the machine it runs on.
    pub log_group_max_mb: u32,
    /// How often autoscaling takes a metric datapoint (CloudWatch: one a minute). The
    /// alarms keep their number of datapoints (3 above target to scale out, 15 below to
    /// scale in), so locally they fire after 3 and 15 periods of this.
    #[serde(with = "serde_duration")]
    pub metric_period: Duration,
}

/// An AWS account and Region to run in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwsEnvironment {
    pub region: String,
    /// A named profile of the AWS config files; the default credential chain when absent.
    pub profile: Option<String>,
    /// When set, berth refuses to act if the credentials belong to another account.
    pub account_id: Option<String>,
}
