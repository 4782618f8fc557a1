//! Tasks: one OS process per ECS task, supervised through ECS's task lifecycle; for a
//! container task that process is the engine's foreground `run` (`container.rs`).
//!
//! A task is started from a [`TaskSpec`] (the registry snapshot's executable, the service's
//! environment, the secrets already resolved, the task's own `PORT`). It lives in its own
//! process group so that stopping it reaches everything it spawned: SIGTERM to the group, then
//! SIGKILL after the stop timeout (ECS-SEMANTICS S4.19). Its state is published through a
//! [`tokio::sync::watch`] channel of [`TaskSnapshot`]s, the shape `berth status` shows.

mod container;
mod health;
mod process;
mod state;
mod user;

pub use container::{
    ContainerNetwork, ContainerRun, EngineSecrets, OUT_OF_MEMORY, STATE_LABEL, SecretHandoffError,
    engine_secret_prefix, remove_leftovers,
};
pub use health::{ContainerHealthCheck, HealthCounter};
pub use process::free_port;
pub use state::{DesiredStatus, HealthStatus, StopCode, TaskId, TaskSnapshot, TaskStatus, reasons};
pub use user::{TASK_OS_USER, TaskUser, TaskUserError};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

/// ECS's `stopTimeout` when a task definition does not set one (S4.19).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The address a task listens on (its `HOST`): loopback only. The balancer reaches it there;
/// nothing on the network does, as on AWS where security groups keep tasks private.
pub const TASK_HOST: &str = "127.0.0.1";

/// A secret's value, resolved from the parameter store at task start (S7.8).
///
/// Its `Debug` never shows the value, so a task spec can be logged safely.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear value: only for the child's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// Which of a child's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Where a task's stdout and stderr lines go (its log stream).
pub trait OutputSink: Send + Sync + 'static {
    fn line(&self, stream: OutputStream, line: &str);
}

/// What to do with a task's output.
#[derive(Clone, Default)]
pub enum TaskOutput {
    /// Discard it.
    #[default]
    Null,
    /// Hand every line to a sink (the log stream of the task).
    Lines(Arc<dyn OutputSink>),
}

impl fmt::Debug for TaskOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("Null"),
            Self::Lines(_) => f.write_str("Lines"),
        }
    }
}

/// Everything needed to start one task process.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The registry snapshot's executable (or, with `working_dir`, the program to run there).
    pub executable: PathBuf,
    pub args: Vec<String>,
    /// The service's environment (plain values).
    pub env: Vec<(String, String)>,
    /// Secrets, already resolved: exposed as environment variables, never logged.
    pub secrets: Vec<(String, SecretValue)>,
    /// A directory artifact's snapshot: the task runs in it, and `executable` is a program
    /// found as exec finds it (on `PATH`, or relative to this directory) instead of a file
    /// of the snapshot.
    pub working_dir: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL (ECS `stopTimeout`, default 30 s).
    pub stop_timeout: Duration,
    pub health_check: Option<ContainerHealthCheck>,
    pub output: TaskOutput,
    /// The account the task (and its container health check) runs as; `None`: berth's own.
    pub user: Option<TaskUser>,
    /// Run as a container of this image instead of `executable` (`container.rs`).
    pub container: Option<ContainerRun>,
}

impl TaskSpec {
    pub fn new(executable: impl Into<PathBuf>) -> Self {
        Self {
            executable: executable.into(),
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
            working_dir: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            health_check: None,
            output: TaskOutput::Null,
            user: None,
            container: None,
        }
    }

    /// The child's whole environment: service variables, then secrets, then what the runtime
    /// decides (`PORT`, `HOST`, and `HOME` of the task's account), which the stack cannot
    /// override.
    fn environment(&self, port: u16) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(
            self.secrets
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_owned())),
        );
        env.push(("PORT".to_owned(), port.to_string()));
        env.push(("HOST".to_owned(), TASK_HOST.to_owned()));
        if let Some(user) = &self.user {
            env.push(("HOME".to_owned(), user.home.clone()));
        }
        env
    }
}

/// A request to stop a task, with the code and reason ECS would record.
#[derive(Debug, Clone)]
struct StopRequest {
    code: StopCode,
    reason: String,
}

/// A handle on a running (or finished) task.
///
/// Dropping the handle does not stop the process: the supervisor keeps it until [`Task::stop`].
#[derive(Debug, Clone)]
pub struct Task {
    id: TaskId,
    port: u16,
    /// Kept for recovery: a later berth gives a leftover process the same time to exit.
    stop_timeout: Duration,
    /// Its revision defines a container health check (its health then counts, S1.10).
    has_health_check: bool,
    state: Arc<watch::Sender<TaskSnapshot>>,
    stop: mpsc::UnboundedSender<StopRequest>,
}

impl Task {
    /// Starts a task process on `port` (PROVISIONING → PENDING → ACTIVATING).
    ///
    /// The task stays ACTIVATING until [`Task::mark_running`]: the caller registers its targets
    /// first, as ECS does (S4.2). A process that cannot be spawned gives a task that is already
    /// STOPPED with `TaskFailedToStart`, so the scheduler sees the failure like any other.
    pub fn start(id: TaskId, spec: TaskSpec, port: u16) -> Self {
        let snapshot = TaskSnapshot::provisioning(id.clone(), port);
        let state = Arc::new(watch::Sender::new(snapshot));
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        let task = Self {
            id,
            port,
            stop_timeout: spec.stop_timeout,
            has_health_check: spec.health_check.is_some(),
            state: state.clone(),
            stop: stop_tx,
        };
        task.update(|s| s.last_status = TaskStatus::Pending);
        match process::spawn(&spec, port) {
            Ok(child) => {
                let pid = child.pid;
                task.update(|s| {
                    s.last_status = TaskStatus::Activating;
                    s.pid = Some(pid);
                    s.started_at = Some(Utc::now());
                });
                tokio::spawn(process::supervise(child, spec, state, stop_rx));
            }
            Err(error) => {
                tracing::warn!(task = %task.id, %error, "task failed to start");
                if let Some(container) = spec.container {
                    tokio::spawn(async move { container.remove_secrets().await });
                }
                task.update(|s| {
                    s.finish(
                        StopCode::TaskFailedToStart,
                        format!("CannotStartContainerError: {error}"),
                        None,
                    )
                });
            }
        }
        task
    }

    /// Starts a task as [`Task::start`] does, after making sure a container task's image is
    /// there (pulled if not) and handing its secrets to its engine (podman's secrets, absent
    /// from `inspect`). An image that cannot be pulled or a handoff that fails gives a task
    /// STOPPED with `TaskFailedToStart` (`CannotPullContainerError`, or a reason naming no
    /// secret's value).
    pub async fn launch(id: TaskId, mut spec: TaskSpec, port: u16) -> Self {
        if let Some(container) = &spec.container
            && let Err(reason) = container.ensure_image().await
        {
            return Self::failed_to_start(id, reason);
        }
        if let Some(container) = &mut spec.container
            && let Err(error) = container.hold_secrets(&spec.args, &spec.secrets).await
        {
            return Self::failed_to_start(
                id,
                format!(
                    "ResourceInitializationError: unable to pass secrets to the container engine: {}",
                    crate::error_chain(&error)
                ),
            );
        }
        Self::start(id, spec, port)
    }

    /// A task that failed before any process could start (a secret that does not resolve,
    /// no image): recorded STOPPED with `TaskFailedToStart` and the given reason.
    pub fn failed_to_start(id: TaskId, reason: String) -> Self {
        let mut snapshot = TaskSnapshot::provisioning(id.clone(), 0);
        snapshot.finish(StopCode::TaskFailedToStart, reason, None);
        let (stop_tx, _) = mpsc::unbounded_channel();
        Self {
            id,
            port: 0,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            has_health_check: false,
            state: Arc::new(watch::Sender::new(snapshot)),
            stop: stop_tx,
        }
    }

    pub fn id(&self) -> &TaskId {
        &self.id
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Time between SIGTERM and SIGKILL when the task is stopped.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }

    /// Whether the task runs a container health check.
    pub fn has_health_check(&self) -> bool {
        self.has_health_check
    }

    pub fn snapshot(&self) -> TaskSnapshot {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn subscribe(&self) -> watch::Receiver<TaskSnapshot> {
        self.state.subscribe()
    }

    /// ACTIVATING → RUNNING, once the task's targets are registered.
    pub fn mark_running(&self) {
        self.update(|s| {
            if s.last_status == TaskStatus::Activating {
                s.last_status = TaskStatus::Running;
            }
        });
    }

    /// RUNNING → DEACTIVATING: the task is going to stop (its targets are being
    /// deregistered). Records the stop code and reason now, as ECS does when the stop is
    /// requested.
    pub fn begin_stop(&self, code: StopCode, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|s| {
            if s.last_status.is_stopped() || s.desired_status == DesiredStatus::Stopped {
                return;
            }
            s.desired_status = DesiredStatus::Stopped;
            s.stop_code = Some(code);
            s.stopped_reason = Some(reason);
            if matches!(s.last_status, TaskStatus::Running | TaskStatus::Activating) {
                s.last_status = TaskStatus::Deactivating;
            }
        });
    }

    /// Stops the process: SIGTERM to its group, SIGKILL after the stop timeout. Returns once
    /// the task is STOPPED. The first recorded stop code and reason win.
    pub async fn stop(&self, code: StopCode, reason: impl Into<String>) -> TaskSnapshot {
        let reason = reason.into();
        self.begin_stop(code, reason.clone());
        // The supervisor may already be gone (the process exited): then it is STOPPED already.
        let _ = self.stop.send(StopRequest { code, reason });
        self.stopped().await
    }

    /// Waits until the task is STOPPED and returns its final state.
    pub async fn stopped(&self) -> TaskSnapshot {
        let mut rx = self.state.subscribe();
        match rx.wait_for(|s| s.last_status.is_stopped()).await {
            Ok(snapshot) => snapshot.clone(),
            // The sender lives in `self`: it cannot be dropped while we wait.
            Err(_) => self.snapshot(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut TaskSnapshot)) {
        self.state.send_modify(change);
    }
}
