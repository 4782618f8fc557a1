//! The supervisor that owns everything a running berth started: the service controllers
//! (and through them the tasks), the control socket, the recovery state, and the shutdown
//! steps of the balancer and the database, run in order at the end.

mod autoscale;
mod containers;
mod database;
mod db_watch;
mod launcher;
mod logs;
mod release;
mod revisions;
mod router;
mod state_file;
mod traffic;
mod up;
mod usage;

pub use crate::service::shift::{ShiftOutcome, ShiftProgress};
pub use autoscale::{Metric, Scaler, ScalerSettings};
pub use containers::remove_left_containers;
pub use database::{DatabaseOutputs, DatabaseStartError, RunningDatabase};
pub use launcher::{
    ContainerTemplate, LogStreams, NoSecrets, SecretSource, StackLauncher, TaskTemplate, Templates,
    missing_parameters,
};
pub use release::{Release, Releases, StackReleases};
pub use router::BalancerRouter;
pub use state_file::{RunStateFile, StateWrite, StateWriter};
pub use traffic::{DEFAULT_HOOK_TIMEOUT, StackShifter, TrafficShift};
pub use up::{Progress, UpError, UpOptions, log_stream_name, run_dir, state_dir, up};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::cleanup::{RunDeployment, RunPostgres, RunState, RunTask, process_start_time};
use crate::control::{
    ControlError, ControlHandler, ControlServer, DeployStarted, StatusReport, TargetGroupStatus,
    WatchedService,
};
use crate::service::{
    BoxFuture, Deployment, DeploymentStatus, RolloutState, ServiceController, ServiceHandle,
    ServiceNotice, ServiceSettings, ServiceStatus, TargetRouter, TaskLauncher,
};

/// A service's rollout, if one is in progress: its PRIMARY deployment not yet COMPLETED while
/// another deployment still has tasks (not the first deployment `berth up` makes).
fn rollout_in_progress(service: &ServiceHandle) -> Option<RunDeployment> {
    let deployments = service.deployments();
    let (primary, others) = deployments.split_first()?;
    let replacing: Vec<String> = others
        .iter()
        .filter(|d| d.status == DeploymentStatus::Active)
        .map(|d| d.task_definition.clone())
        .collect();
    (primary.rollout_state == RolloutState::InProgress && !replacing.is_empty()).then(|| {
        RunDeployment {
            service: service.name().to_owned(),
            deployment_id: primary.id.clone(),
            task_definition: primary.task_definition.clone(),
            replacing,
        }
    })
}

/// How often the recovery state is brought up to date.
const STATE_EVERY: Duration = Duration::from_millis(500);
/// The longest a watch waits for a change before answering with the status as it is (so
/// a client notices a berth that went away).
const WATCH_AT_MOST: Duration = Duration::from_secs(10);

/// Progress of the runtime, for the CLI to render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuntimeEvent {
    /// A step of bringing the stack up (database started, image built, listening...).
    Progress {
        message: String,
    },
    /// A service event (ECS wording).
    Service {
        service: String,
        message: String,
    },
    /// A database event (RDS wording): the server died, was restarted.
    Database {
        message: String,
    },
    /// Every service reached a steady state: the stack serves at `url`.
    Healthy {
        url: String,
    },
    /// The ordered shutdown began / ended.
    Stopping,
    Stopped,
}

/// A step run at shutdown, after every task stopped (stop the balancer, stop PostgreSQL).
pub type ShutdownStep = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// What the supervisor is given to run.
pub struct RuntimeParts {
    pub stack: String,
    pub environment: String,
    /// The load balancer's URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// `.berth/run`.
    pub run_dir: PathBuf,
    /// The recovery file in `run_dir`, shared with the launcher (which records tasks as
    /// they start).
    pub state_file: Arc<RunStateFile>,
    pub services: Vec<ServiceSettings>,
    /// Target tracking for the services that have it.
    pub autoscaling: Vec<ScalerSettings>,
    pub launcher: Arc<dyn TaskLauncher>,
    /// Makes new revisions for `berth deploy` (none: deploy is refused).
    pub releases: Option<Arc<dyn Releases>>,
    pub router: Option<Arc<dyn TargetRouter>>,
    /// Shown by `berth status`: where the local runtime differs from AWS.
    pub local_differences: Vec<String>,
    /// Recorded for recovery.
    pub postgres: Option<RunPostgres>,
    /// The stack's database: supervised while the runtime runs, shown by `berth status`.
    pub database: Option<RunningDatabase>,
    /// Run in order after the tasks stopped.
    pub shutdown_steps: Vec<(String, ShutdownStep)>,
    /// Whether to listen on the control socket (off for in-process tests that run
    /// several runtimes in one directory).
    pub control_socket: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Cleanup(#[from] crate::cleanup::CleanupError),
}

/// A running stack.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    stack: String,
    environment: String,
    url: String,
    run_dir: PathBuf,
    state_file: Arc<RunStateFile>,
    started_at: DateTime<Utc>,
    services: Vec<ServiceHandle>,
    scalers: Vec<Scaler>,
    releases: Option<Arc<dyn Releases>>,
    router: Option<Arc<dyn TargetRouter>>,
    target_groups: Vec<(String, String)>,
    /// Each service's alternate (green) target group, with the service.
    alternate_groups: Vec<(String, String)>,
    local_differences: Vec<String>,
    postgres: Option<RunPostgres>,
    database: Option<RunningDatabase>,
    events: broadcast::Sender<RuntimeEvent>,
    background: CancellationToken,
    shutdown_steps: Mutex<Vec<(String, ShutdownStep)>>,
    shutdown_started: AtomicBool,
    stopped: watch::Sender<bool>,
    /// Asked to stop (by `berth down` through the socket, or `Runtime::request_stop`).
    stop_requested: CancellationToken,
}

impl Runtime {
    /// Starts the service controllers (which start the tasks), the control socket and the
    /// recovery-state writer.
    pub fn start(parts: RuntimeParts) -> Result<Self, RuntimeError> {
        let (events, _) = broadcast::channel(1024);
        let control = if parts.control_socket {
            Some(ControlServer::bind(&parts.run_dir)?)
        } else {
            None
        };
        let target_groups = parts
            .services
            .iter()
            .filter_map(|s| Some((s.target_group.clone()?, s.name.clone())))
            .collect();
        // Green's groups show once a traffic-shifting deployment used them.
        let alternate_groups = parts
            .services
            .iter()
            .filter_map(|s| {
                Some((
                    s.traffic.as_ref()?.alternate_target_group.clone(),
                    s.name.clone(),
                ))
            })
            .collect();
        let (notices, notices_rx) = broadcast::channel(1024);
        tokio::spawn(forward_notices(notices_rx, events.clone()));
        let services = parts
            .services
            .into_iter()
            .map(|settings| {
                ServiceController::spawn(
                    settings,
                    parts.launcher.clone(),
                    parts.router.clone(),
                    notices.clone(),
                )
            })
            .collect::<Vec<_>>();
        let stop_requested = CancellationToken::new();
        let scalers = parts
            .autoscaling
            .into_iter()
            .filter_map(|settings| {
                let handle = services.iter().find(|s| s.name() == settings.service)?;
                // Scaling ends as soon as the runtime is asked to stop.
                Some(Scaler::spawn(
                    settings,
                    handle.clone(),
                    parts.router.clone(),
                    stop_requested.child_token(),
                ))
            })
            .collect();
        let inner = Arc::new(Inner {
            stack: parts.stack,
            environment: parts.environment,
            url: parts.url,
            run_dir: parts.run_dir,
            state_file: parts.state_file,
            started_at: Utc::now(),
            services,
            scalers,
            releases: parts.releases,
            router: parts.router,
            target_groups,
            alternate_groups,
            local_differences: parts.local_differences,
            postgres: parts.postgres,
            database: parts.database,
            events,
            background: CancellationToken::new(),
            shutdown_steps: Mutex::new(parts.shutdown_steps),
            shutdown_started: AtomicBool::new(false),
            stopped: watch::Sender::new(false),
            stop_requested,
        });
        inner.write_state()?;
        tokio::spawn(state_writer(inner.clone()));
        if let Some(database) = &inner.database {
            database.supervise(inner.events.clone());
        }
        if let Some(control) = control {
            let handler: Arc<dyn ControlHandler> = Arc::new(Runtime {
                inner: inner.clone(),
            });
            tokio::spawn(control.serve(handler, inner.background.clone()));
        }
        Ok(Self { inner })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub fn events(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    /// Sends a progress event to whoever renders them.
    pub fn progress(&self, message: impl Into<String>) {
        let _ = self.inner.events.send(RuntimeEvent::Progress {
            message: message.into(),
        });
    }

    pub fn services(&self) -> &[ServiceHandle] {
        &self.inner.services
    }

    /// Resolves once every service is in steady state (every target healthy).
    pub async fn wait_steady(&self) {
        for service in &self.inner.services {
            let mut steady = service.steady();
            // The sender lives as long as the controller's record: an error means it ended.
            let _ = steady.wait_for(|s| *s).await;
        }
        let _ = self.inner.events.send(RuntimeEvent::Healthy {
            url: self.inner.url.clone(),
        });
    }

    pub fn status(&self) -> StatusReport {
        self.inner.status()
    }

    pub fn scale(&self, service: &str, count: u32) -> Result<(), String> {
        self.inner.scale(service, count)
    }

    /// Asks the runtime to stop (what `berth down` and Ctrl-C do); [`Runtime::stop_requested`]
    /// resolves for whoever owns the runtime.
    pub fn request_stop(&self) {
        self.inner.stop_requested.cancel();
    }

    /// Resolves when someone asked this runtime to stop.
    pub async fn stop_requested(&self) {
        self.inner.stop_requested.cancelled().await;
    }

    /// The ordered shutdown: deregister and drain every target, stop every task (SIGTERM,
    /// then SIGKILL), run the shutdown steps (balancer, database), remove the run files.
    /// Safe to call more than once; later calls wait for the first.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

impl Inner {
    /// A service's status, with its scaler's view when it has one.
    fn service_status(&self, service: &ServiceHandle) -> ServiceStatus {
        let mut status = service.status();
        if let Some(scaler) = self.scalers.iter().find(|s| s.service() == service.name()) {
            scaler.fill(&mut status);
        }
        status
    }

    fn status(&self) -> StatusReport {
        let alternates = self.alternate_groups.iter().filter(|(tg, _)| {
            self.router.as_ref().is_some_and(|r| {
                !r.traffic_weights(tg).is_empty() || !r.target_health(tg).is_empty()
            })
        });
        let target_groups = self
            .target_groups
            .iter()
            .chain(alternates)
            .map(|(tg, service)| TargetGroupStatus {
                target_group_name: tg.clone(),
                service: service.clone(),
                weights: self
                    .router
                    .as_ref()
                    .map(|r| r.traffic_weights(tg))
                    .unwrap_or_default(),
                targets: self
                    .router
                    .as_ref()
                    .map(|r| r.target_health(tg))
                    .unwrap_or_default(),
            })
            .collect();
        StatusReport {
            stack: self.stack.clone(),
            environment: self.environment.clone(),
            url: self.url.clone(),
            pid: std::process::id(),
            started_at: self.started_at,
            services: self
                .services
                .iter()
                .map(|s| self.service_status(s))
                .collect(),
            target_groups,
            database: self.database.as_ref().and_then(RunningDatabase::status),
            local_differences: self.local_differences.clone(),
        }
    }

    fn scale(&self, service: &str, count: u32) -> Result<(), String> {
        self.service(service)?.scale(count);
        Ok(())
    }

    fn service(&self, service: &str) -> Result<&ServiceHandle, String> {
        self.services
            .iter()
            .find(|s| s.name() == service)
            .ok_or_else(|| {
                let known: Vec<&str> = self.services.iter().map(ServiceHandle::name).collect();
                format!(
                    "no service `{service}` in this stack (services: {})",
                    known.join(", ")
                )
            })
    }

    async fn deploy(
        &self,
        service: &str,
        stack_file: &std::path::Path,
        image: Option<&str>,
        strategy: Option<&str>,
    ) -> Result<DeployStarted, String> {
        let handle = self.service(service)?;
        let releases = self
            .releases
            .as_ref()
            .ok_or("this berth cannot make new revisions")?;
        let release = releases
            .register(stack_file, service, image, strategy)
            .await?;
        // UpdateService: the settings first, so the deployment runs under them.
        handle.update(release.update);
        let task_definition = release.revision.task_definition.clone();
        let deployment_id = handle.deploy_with(release.revision, release.shift).await?;
        Ok(DeployStarted {
            service: service.to_owned(),
            deployment_id,
            task_definition,
        })
    }

    async fn rollback(&self, service: &str) -> Result<DeployStarted, String> {
        let handle = self.service(service)?;
        let deployment_id = handle.rollback().await?;
        let task_definition = handle
            .deployments()
            .into_iter()
            .find(|d| d.id == deployment_id)
            .map(|d| d.task_definition)
            .unwrap_or_default();
        Ok(DeployStarted {
            service: service.to_owned(),
            deployment_id,
            task_definition,
        })
    }

    /// The service's status once its change counter passes `since` (or after
    /// [`WATCH_AT_MOST`]).
    async fn watch(&self, service: &str, since: u64) -> Result<WatchedService, String> {
        let handle = self.service(service)?;
        let mut changes = handle.changes();
        // An error means the controller ended: answer with what it last had.
        let _ = tokio::time::timeout(WATCH_AT_MOST, changes.wait_for(|n| *n > since)).await;
        let version = *changes.borrow();
        Ok(WatchedService {
            version,
            status: Box::new(handle.status()),
            deployments: handle.deployments(),
        })
    }

    fn run_state(&self) -> RunState {
        RunState {
            listen: Some(self.url.clone()),
            tasks: self
                .services
                .iter()
                .flat_map(|service| {
                    service.live_tasks().into_iter().filter_map(|task| {
                        let snapshot = task.snapshot();
                        let pid = snapshot.pid?;
                        Some(RunTask {
                            service: service.name().to_owned(),
                            task_id: snapshot.task_id.to_string(),
                            pid,
                            start_time: process_start_time(pid),
                            port: snapshot.port,
                            stop_timeout: task.stop_timeout(),
                        })
                    })
                })
                .collect(),
            postgres: self.postgres.clone(),
            deployments: self
                .services
                .iter()
                .filter_map(rollout_in_progress)
                .collect(),
            ..RunState::of_this_berth()
        }
    }

    fn write_state(&self) -> Result<(), crate::cleanup::CleanupError> {
        self.state_file.update(self.run_state())
    }

    async fn shutdown(&self) {
        if self.shutdown_started.swap(true, Ordering::SeqCst) {
            let mut stopped = self.stopped.subscribe();
            let _ = stopped.wait_for(|s| *s).await;
            return;
        }
        self.stop_requested.cancel();
        let _ = self.events.send(RuntimeEvent::Stopping);
        let mut set = tokio::task::JoinSet::new();
        for service in self.services.clone() {
            set.spawn(async move { service.shutdown().await });
        }
        while set.join_next().await.is_some() {}
        let steps = std::mem::take(
            &mut *self
                .shutdown_steps
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (name, step) in steps {
            let _ = self.events.send(RuntimeEvent::Progress {
                message: format!("stopping {name}"),
            });
            step().await;
        }
        self.background.cancel();
        RunState::remove(&self.run_dir);
        let _ = self.events.send(RuntimeEvent::Stopped);
        self.stopped.send_replace(true);
    }
}

impl ControlHandler for Runtime {
    fn status(&self) -> StatusReport {
        self.inner.status()
    }

    fn scale(&self, service: &str, count: u32) -> Result<(), String> {
        self.inner.scale(service, count)
    }

    fn down(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.stop_requested.cancel();
            self.inner.shutdown().await;
        })
    }

    fn deploy<'a>(
        &'a self,
        service: &'a str,
        stack_file: &'a std::path::Path,
        image: Option<&'a str>,
        strategy: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeployStarted, String>> {
        Box::pin(self.inner.deploy(service, stack_file, image, strategy))
    }

    fn rollback<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<DeployStarted, String>> {
        Box::pin(self.inner.rollback(service))
    }

    fn deployments(&self, service: &str) -> Result<Vec<Deployment>, String> {
        Ok(self.inner.service(service)?.deployments())
    }

    fn watch<'a>(
        &'a self,
        service: &'a str,
        since: u64,
    ) -> BoxFuture<'a, Result<WatchedService, String>> {
        Box::pin(self.inner.watch(service, since))
    }
}

/// Service events become the runtime's progress events; ends when every controller has.
async fn forward_notices(
    mut notices: broadcast::Receiver<ServiceNotice>,
    events: broadcast::Sender<RuntimeEvent>,
) {
    loop {
        match notices.recv().await {
            Ok(ServiceNotice { service, message }) => {
                // Nobody listening is fine.
                let _ = events.send(RuntimeEvent::Service { service, message });
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "service events dropped on the way to the progress output"
                );
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Keeps `.berth/run/state.json` current while the runtime runs: drops stopped tasks and
/// adds ports. Tasks are recorded as they start by the launcher, not here.
async fn state_writer(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(STATE_EVERY);
    loop {
        tokio::select! {
            () = inner.background.cancelled() => return,
            _ = tick.tick() => {}
        }
        if inner.shutdown_started.load(Ordering::SeqCst) {
            // Tasks are stopping: keep the last full list, so a berth killed mid-shutdown
            // still leaves enough to clean up.
            continue;
        }
        if let Err(error) = inner.write_state() {
            tracing::warn!(%error, "cannot update the run state");
        }
    }
}
