use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::duration::{serde_duration, serde_opt_duration};

/// One `[services.<name>]`: an ECS service, its task definition, target group and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// The key in the stack file (`backend`).
    pub name: String,
    /// The ECS service name (`backend-service`).
    pub service_name: String,
    /// The task-definition family (`backend-task`).
    pub task_family: String,
    /// The image repository (`backend-repo`).
    pub repository: String,
    /// The container's name inside the task (`backend-app`).
    pub container_name: String,
    /// The port the container listens on (AWS); locally each task gets its own port.
    pub port: u16,
    /// Fargate task CPU units (512 = 0.5 vCPU).
    pub cpu: u32,
    /// Fargate task memory, MiB.
    pub memory: u32,
    pub desired_count: u32,
    /// How to build the artifact locally; absent for services run from pushed images only.
    pub build: Option<Build>,
    /// The service's image: built from a Dockerfile or a given reference. With a container
    /// engine the local runtime runs it; without one it runs `build`'s process instead.
    pub image: Option<Image>,
    /// The target group's name (`backend-tg`).
    pub target_group: String,
    /// Path rules that forward to this service, in file order.
    pub routes: Vec<Route>,
    /// Whether the listener's default action forwards here (exactly one service).
    pub default_route: bool,
    pub health_check: HealthCheck,
    pub container_health_check: Option<ContainerHealthCheck>,
    /// Plain variables, set verbatim.
    pub environment: BTreeMap<String, String>,
    /// Variable name → parameter name; the value is read at task start.
    pub secrets: BTreeMap<String, String>,
    pub logs: Logs,
    pub deployment: Deployment,
    pub autoscaling: Option<Autoscaling>,
    /// How long a deregistering target keeps in-flight requests (AWS default 300 s).
    #[serde(with = "serde_duration")]
    pub deregistration_delay: Duration,
}

/// A local build: run `command` in `context`, then snapshot `artifact` into the registry.
///
/// Both paths are absolute: `context` resolved against the stack file's directory,
/// `artifact` against `context`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    pub context: PathBuf,
    /// A shell command line (run with `sh -c`).
    pub command: String,
    /// The executable the task runs; with `run`, the directory it runs in.
    pub artifact: PathBuf,
    /// `run = ["python3", "server.py"]`: the artifact is a directory (an interpreted app, a
    /// `dist/`), and a task runs this program and arguments with the directory's snapshot as
    /// its working directory (the program found on `PATH`, or relative to the snapshot).
    /// `None`: the artifact is the executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
}

/// Where a service's image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// `build = { dockerfile = ... }`: built by the container engine.
    Dockerfile(ImageBuild),
    /// `image = "registry/name:tag"`: run as given (pulled by the engine if missing).
    Reference(String),
}

/// An image build: `docker build -f <dockerfile> [--target <target>] [--build-arg k=v] <context>`.
///
/// Paths are absolute: `context` resolved against the stack file's directory, `dockerfile`
/// against `context` (as Compose does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageBuild {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// The stage to build (`--target`); the last stage when absent.
    pub target: Option<String>,
    /// `--build-arg NAME=value`, in name order.
    pub args: BTreeMap<String, String>,
}

/// One listener rule: requests whose path matches `path` go to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// An ALB path pattern: case-sensitive, `*` matches any run, `?` one character.
    pub path: String,
    /// 1 to 50000, lower first; unique across the listener.
    pub priority: u32,
}

/// The target group's health check (ALB semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub path: String,
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes that mean healthy: `"200"`, `"200,204"`, `"200-299"`.
    pub matcher: String,
}

impl HealthCheck {
    /// Whether `status` matches [`HealthCheck::matcher`].
    pub fn matches(&self, status: u16) -> bool {
        self.matcher
            .split(',')
            .any(|part| match part.split_once('-') {
                Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                    (Ok(lo), Ok(hi)) => (lo..=hi).contains(&status),
                    _ => false,
                },
                None => part.trim().parse::<u16>() == Ok(status),
            })
    }
}

/// The container's own health check (the task definition's `healthCheck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerHealthCheck {
    /// `["CMD", arg...]` or `["CMD-SHELL", "<shell command>"]`.
    pub command: Vec<String>,
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(with = "serde_opt_duration")]
    pub start_period: Option<Duration>,
}

/// The awslogs configuration (locally: the runtime's log groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logs {
    pub group: String,
    /// One of CloudWatch's allowed values; `None` keeps logs forever.
    pub retention_days: Option<u32>,
    /// Streams are named `<prefix>/<container>/<task-id>`.
    pub stream_prefix: String,
}

/// How a new version replaces the old one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub strategy: Strategy,
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
    /// How long ECS ignores failing health checks of a new task.
    #[serde(with = "serde_duration")]
    pub health_check_grace_period: Duration,
    /// SIGTERM → SIGKILL delay (Fargate: 2 s to 120 s).
    #[serde(with = "serde_duration")]
    pub stop_timeout: Duration,
    /// What the traffic-shifting strategies need besides their percents and bakes; `None`
    /// for `rolling`.
    pub traffic: Option<TrafficWiring>,
}

/// A blue/green, canary or linear deployment's wiring (ECS-SEMANTICS S3.7, S3.11–S3.12),
/// so that the AWS engine can use the same file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficWiring {
    /// The green side's target group (`advancedConfiguration.alternateTargetGroupArn`);
    /// `<target_group>-alt` unless given. The two groups swap roles at each deployment.
    pub alternate_target_group: String,
    /// The test listener's port: on AWS a second listener with a rule that reaches green
    /// before production traffic moves (`testListenerRule`); locally a second port of the
    /// balancer, a free one when `None`.
    pub test_listener_port: Option<u16>,
    /// Lifecycle hooks: ECS stage name (`POST_TEST_TRAFFIC_SHIFT`) → a `sh -c` command whose
    /// exit status 0 approves the stage; anything else fails it and rolls back (S3.13).
    pub hooks: BTreeMap<String, String>,
    /// How long a hook may run before it fails its stage (S3.12, action ROLLBACK).
    #[serde(with = "serde_duration")]
    pub hook_timeout: Duration,
}

/// The ECS deployment strategy and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Strategy {
    Rolling,
    BlueGreen {
        #[serde(with = "serde_duration")]
        bake_time: Duration,
    },
    Canary {
        /// Share of production traffic shifted first, 0.1 to 100.
        percent: f64,
        #[serde(with = "serde_duration")]
        canary_bake: Duration,
        #[serde(with = "serde_duration")]
        bake_time: Duration,
    },
    Linear {
        /// Share shifted at each step, 3 to 100.
        step_percent: f64,
        #[serde(with = "serde_duration")]
        step_bake: Duration,
        #[serde(with = "serde_duration")]
        bake_time: Duration,
    },
}

impl Strategy {
    /// The strategy named `kind` (`rolling`, `blue_green`, `canary`, `linear`) with ECS's
    /// defaults (S3.3–S3.6): what `berth deploy --strategy` uses when the stack file names
    /// another strategy.
    pub fn defaults(kind: &str) -> Option<Strategy> {
        const MINUTE: Duration = Duration::from_secs(60);
        Some(match kind {
            "rolling" => Strategy::Rolling,
            "blue_green" => Strategy::BlueGreen {
                bake_time: 5 * MINUTE,
            },
            "canary" => Strategy::Canary {
                percent: 5.0,
                canary_bake: 10 * MINUTE,
                bake_time: 5 * MINUTE,
            },
            "linear" => Strategy::Linear {
                step_percent: 10.0,
                step_bake: 6 * MINUTE,
                bake_time: 5 * MINUTE,
            },
            _ => return None,
        })
    }

    /// The name the stack file gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen { .. } => "blue_green",
            Strategy::Canary { .. } => "canary",
            Strategy::Linear { .. } => "linear",
        }
    }
}

impl Service {
    /// The green side's target group: the stack file's `alternate_target_group`, or
    /// `<target_group>-alt`.
    pub fn alternate_target_group(&self) -> String {
        self.deployment.traffic.as_ref().map_or_else(
            || crate::resolve::deployment::derived_alternate(&self.target_group),
            |t| t.alternate_target_group.clone(),
        )
    }
}

/// The deployment circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

/// Target-tracking autoscaling.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    pub target: ScalingTarget,
    #[serde(with = "serde_duration")]
    pub scale_in_cooldown: Duration,
    #[serde(with = "serde_duration")]
    pub scale_out_cooldown: Duration,
}

/// The metric autoscaling keeps at its target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingTarget {
    CpuPercent(f64),
    MemoryPercent(f64),
    RequestsPerTarget(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_accepts_codes_lists_and_ranges() {
        let mut check = HealthCheck {
            path: "/".into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        };
        assert!(check.matches(200) && !check.matches(204));
        check.matcher = "200,204".into();
        assert!(check.matches(204) && !check.matches(201));
        check.matcher = "200-299".into();
        assert!(check.matches(250) && !check.matches(300));
    }
}
