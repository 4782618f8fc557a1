//! The container health check (ECS-SEMANTICS §4.4): a shell command run periodically in the
//! task's environment; exit 0 is a pass.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::{HealthStatus, TaskSnapshot};
use super::{ContainerRun, TaskUser};

/// `healthCheck` of a container definition, `CMD-SHELL` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerHealthCheck {
    /// Run with `sh -c`.
    pub command: String,
    /// Default 30 s.
    pub interval: Duration,
    /// Default 5 s.
    pub timeout: Duration,
    /// Consecutive failures that make the container UNHEALTHY. Default 3.
    pub retries: u32,
    /// Failures during this time after start do not count (a success ends it). Default 0.
    pub start_period: Duration,
}

impl ContainerHealthCheck {
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }
}

/// The counting rules of S4.11–S4.12, separate from the running of commands so they can be
/// tested on their own.
#[derive(Debug, Clone)]
pub struct HealthCounter {
    retries: u32,
    start_period: Duration,
    consecutive_failures: u32,
    ever_passed: bool,
    status: HealthStatus,
}

impl HealthCounter {
    pub fn new(check: &ContainerHealthCheck) -> Self {
        Self {
            retries: check.retries.max(1),
            start_period: check.start_period,
            consecutive_failures: 0,
            ever_passed: false,
            status: HealthStatus::Unknown,
        }
    }

    /// Records one result, `since_start` after the container started; returns the status.
    pub fn record(&mut self, passed: bool, since_start: Duration) -> HealthStatus {
        if passed {
            self.ever_passed = true;
            self.consecutive_failures = 0;
            self.status = HealthStatus::Healthy;
        } else if self.ever_passed || since_start >= self.start_period {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= self.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.status
    }

    pub fn status(&self) -> HealthStatus {
        self.status
    }
}

/// Runs a task's health check until cancelled, publishing the status into its snapshot.
pub struct HealthTracker {
    check: ContainerHealthCheck,
    env: Vec<(String, String)>,
    /// The task's account: the check runs as the task does, as inside its container.
    user: Option<TaskUser>,
    /// A container task's check runs inside its container (`exec`), as ECS runs it.
    container: Option<ContainerRun>,
    state: Arc<watch::Sender<TaskSnapshot>>,
}

impl HealthTracker {
    pub(super) fn new(
        check: ContainerHealthCheck,
        env: Vec<(String, String)>,
        user: Option<TaskUser>,
        container: Option<ContainerRun>,
        state: Arc<watch::Sender<TaskSnapshot>>,
    ) -> Self {
        Self {
            check,
            env,
            user,
            container,
            state,
        }
    }

    pub(super) async fn run(self, cancel: CancellationToken) {
        let started = Instant::now();
        let mut counter = HealthCounter::new(&self.check);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.check.interval) => {}
            }
            let passed = tokio::select! {
                () = cancel.cancelled() => return,
                passed = self.probe() => passed,
            };
            let status = counter.record(passed, started.elapsed());
            self.state.send_if_modified(|s| {
                let changed = s.health_status != status;
                s.health_status = status;
                changed
            });
        }
    }

    async fn probe(&self) -> bool {
        let mut command = match &self.container {
            Some(container) => {
                let argv = container.exec_argv(&self.check.command);
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(&self.check.command);
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // Inside a container the check has the container's environment and user; the
        // engine's client keeps its own.
        if self.container.is_none() {
            command
                .env_clear()
                .envs(std::env::var("PATH").map(|p| ("PATH".to_owned(), p)))
                .envs(self.env.iter().cloned());
            if let Some(user) = &self.user {
                command.uid(user.uid).gid(user.gid);
            }
        }
        let Ok(mut child) = command.spawn() else {
            return false;
        };
        match tokio::time::timeout(self.check.timeout, child.wait()).await {
            Ok(Ok(status)) => status.success(),
            // A check that outlives its timeout is a failure; kill_on_drop reaps it.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32, start_period: u64) -> ContainerHealthCheck {
        ContainerHealthCheck {
            retries,
            start_period: Duration::from_secs(start_period),
            ..ContainerHealthCheck::new("true")
        }
    }

    #[test]
    fn unhealthy_after_retries_consecutive_failures() {
        let mut counter = HealthCounter::new(&check(3, 0));
        let t = Duration::from_secs(1);
        assert_eq!(counter.record(false, t), HealthStatus::Unknown);
        assert_eq!(counter.record(false, t), HealthStatus::Unknown);
        assert_eq!(counter.record(false, t), HealthStatus::Unhealthy);
        assert_eq!(counter.record(true, t), HealthStatus::Healthy);
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let mut counter = HealthCounter::new(&check(2, 0));
        let t = Duration::from_secs(1);
        counter.record(false, t);
        assert_eq!(counter.record(true, t), HealthStatus::Healthy);
        assert_eq!(counter.record(false, t), HealthStatus::Healthy);
        assert_eq!(counter.record(false, t), HealthStatus::Unhealthy);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_pass() {
        let mut counter = HealthCounter::new(&check(1, 10));
        assert_eq!(
            counter.record(false, Duration::from_secs(1)),
            HealthStatus::Unknown
        );
        assert_eq!(
            counter.record(false, Duration::from_secs(2)),
            HealthStatus::Unknown
        );
        // A pass inside the start period makes it healthy; later failures count.
        assert_eq!(
            counter.record(true, Duration::from_secs(3)),
            HealthStatus::Healthy
        );
        assert_eq!(
            counter.record(false, Duration::from_secs(4)),
            HealthStatus::Unhealthy
        );
    }

    #[test]
    fn failures_after_the_start_period_count() {
        let mut counter = HealthCounter::new(&check(1, 10));
        assert_eq!(
            counter.record(false, Duration::from_secs(11)),
            HealthStatus::Unhealthy
        );
    }
}
