//! The executor of the service scheduler: observes, asks [`plan`], carries the actions out.
//!
//! It runs a round when something it observes changes (a task's status or container health,
//! a target's health), on a command, and at the next deadline the planner cares about; it
//! never polls. A round repeats at once after it started, stopped or marked a task, so that
//! what the actions changed (a task that failed to start, say) is planned on right away.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, SelectAll};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, REPORT_AFTER};
use super::plan::{Action, BreakerView, ServiceView, ShiftingView, TaskView, plan};
use super::shift::{RollbackCause, ShiftOutcome, ShiftPlan, ShiftProgress, Shifting, Stage};
use super::state::{
    CircuitBreaker, Deployment, DeploymentConfiguration, DeploymentStatus, DeploymentStrategy,
    RolloutState, ServiceEvent, ServiceNotice, ServiceStatus, ServiceTaskStatus, TargetHealthView,
    TargetState, UnhealthyCause,
};
use super::{ShiftRun, TargetRouter, TaskLauncher, TrafficShifter, events};
use crate::task::{StopCode, Task, TaskId, TaskSnapshot, TaskStatus, reasons};

/// How long a task must have run before being healthy counts (resets the start back-off,
/// S1.18). A process that crashes at once looks RUNNING, and healthy when nothing checks it,
/// for a moment: its exit must still count as a failed start, or it would be restarted in a
/// tight loop.
const PROVEN_AFTER: Duration = Duration::from_secs(1);
/// How long a stopped task stays in `berth status`: ECS shows stopped tasks for at least an
/// hour (S4.4), whatever their number.
const STOPPED_KEPT_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Events kept (the console shows 100, S2.19).
const EVENTS_KEPT: usize = 100;
/// Deployments kept for `berth deployments` (the PRIMARY and ACTIVE ones always are).
const DEPLOYMENTS_KEPT: usize = 50;

/// A service as the stack defines it, in the scheduler's terms.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub name: String,
    pub desired_count: u32,
    pub configuration: DeploymentConfiguration,
    /// `healthCheckGracePeriodSeconds` (S1.12).
    pub grace_period: Duration,
    /// The target group the tasks register in.
    pub target_group: Option<String>,
    /// `<family>:<revision>` of the task definition the first deployment runs.
    pub task_definition: String,
    /// The image (registry reference) it runs.
    pub image: String,
    /// Watches the deployments `berth deploy` and rollbacks start (not the first one).
    pub circuit_breaker: CircuitBreaker,
    /// What blue/green, canary and linear deployments need; `None`: only rolling ones.
    pub traffic: Option<ServiceTraffic>,
}

/// A load-balanced service's second target group and what shifts traffic between the two.
#[derive(Clone)]
pub struct ServiceTraffic {
    /// The other target group: the two swap roles at each traffic-shifting deployment.
    pub alternate_target_group: String,
    pub shifter: Arc<dyn TrafficShifter>,
}

impl std::fmt::Debug for ServiceTraffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTraffic")
            .field("alternate_target_group", &self.alternate_target_group)
            .finish_non_exhaustive()
    }
}

/// A revision to deploy: what its tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// `<family>:<revision>`; the launcher starts tasks from it.
    pub task_definition: String,
    /// The image it resolves to (`repository@digest`).
    pub image: String,
}

/// The service settings a `berth deploy` takes from the edited stack file with its revision
/// (ECS's UpdateService: desiredCount, deploymentConfiguration,
/// healthCheckGracePeriodSeconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUpdate {
    /// `None` leaves the count as it is (autoscaling owns it).
    pub desired_count: Option<u32>,
    pub configuration: DeploymentConfiguration,
    pub grace_period: Duration,
}

/// Requests to a running controller.
#[derive(Debug)]
pub enum ServiceCommand {
    /// Change `desiredCount` (updates the PRIMARY deployment in place, S1.30).
    Scale(u32),
    /// New settings, applied before the next command (a deployment) is.
    Update(ServiceUpdate),
    /// Autoscaling changes `desiredCount` (S6.11): as `Scale`, with the activity as a
    /// service event.
    Autoscale(u32, String),
    /// Start a new deployment of `revision`, even an unchanged one (S1.28), rolling or
    /// shifting traffic; replies with its id.
    Deploy(
        Revision,
        Option<ShiftPlan>,
        oneshot::Sender<Result<String, String>>,
    ),
    /// Stop the deployment in progress and roll back (StopServiceDeployment ROLLBACK,
    /// S2.15), or on a settled service deploy the last release before the running one.
    /// Replies with the rollback deployment's id.
    Rollback(oneshot::Sender<Result<String, String>>),
    /// Deregister every target, drain, stop every task; reply when all are STOPPED.
    Shutdown(oneshot::Sender<()>),
}

/// One task the controller owns.
#[derive(Debug)]
struct Tracked {
    task: Task,
    deployment: String,
    /// The revision it runs (`<family>:<n>`).
    task_definition: String,
    /// The target group it registers in (blue's or green's during a traffic shift).
    target_group: Option<String>,
    unhealthy: Option<UnhealthyCause>,
    registered: bool,
    /// The scheduler (or the user) asked it to stop: its exit is not a crash.
    stop_requested: bool,
    /// It has been healthy at least once, [`PROVEN_AFTER`] or more after it started: its exit
    /// does not count toward the back-off.
    was_healthy: bool,
    started: Instant,
}

impl Tracked {
    fn target(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.task.port()))
    }
}

/// A stopped task, kept for `berth status`.
#[derive(Debug)]
struct Stopped {
    task: TaskSnapshot,
    deployment: String,
    task_definition: String,
}

#[derive(Debug)]
struct Record {
    settings: ServiceSettings,
    desired_count: u32,
    /// Newest first: the PRIMARY, the ACTIVE ones, then INACTIVE ones kept as history.
    deployments: Vec<Deployment>,
    /// The deployment the service started with: the circuit breaker does not watch it, so a
    /// stack whose app crashes at `berth up` keeps retrying (throttled) until it is fixed.
    first_deployment: String,
    tasks: Vec<Tracked>,
    stopped: VecDeque<Stopped>,
    events: VecDeque<ServiceEvent>,
    steady: bool,
    backoff: Backoff,
    reported_throttle: bool,
    reported_stuck: bool,
    /// The target group production traffic goes to: new tasks register here, except green's.
    serving: Option<String>,
    /// The traffic-shifting deployment under way.
    shift: Option<ActiveShift>,
}

/// A blue/green, canary or linear deployment under way; its stages run in a
/// [`TrafficShifter`] task that reports its outcome to the controller loop.
#[derive(Debug)]
struct ActiveShift {
    /// The PRIMARY (green) deployment and the one it replaces (blue).
    green_deployment: String,
    blue_deployment: String,
    green_target_group: String,
    progress: watch::Receiver<ShiftProgress>,
    green_ready: watch::Sender<bool>,
    rollback: CancellationToken,
    /// `berth rollback` callers, answered with the rollback deployment once traffic is back.
    waiting: Vec<oneshot::Sender<Result<String, String>>>,
    /// Why the deployment is stopped, when something other than a hook stopped it.
    failure: Option<String>,
}

impl ActiveShift {
    fn stage(&self) -> Stage {
        self.progress.borrow().stage
    }
}

impl Record {
    fn primary(&mut self) -> &mut Deployment {
        // There is always a PRIMARY deployment: the first is made with the record.
        &mut self.deployments[0]
    }

    fn deployment(&mut self, id: &str) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    /// Makes `deployment` the PRIMARY one; the previous PRIMARY becomes ACTIVE.
    fn push_deployment(&mut self, deployment: Deployment) {
        for d in &mut self.deployments {
            if d.status == DeploymentStatus::Primary {
                d.status = DeploymentStatus::Active;
                d.updated_at = Utc::now();
            }
        }
        // A rollback returns to a revision whose tasks may still run: they are its tasks now.
        for task in &mut self.tasks {
            if task.task_definition == deployment.task_definition {
                task.deployment = deployment.id.clone();
            }
        }
        self.deployments.insert(0, deployment);
        self.deployments.truncate(DEPLOYMENTS_KEPT);
        self.steady = false;
        self.reported_stuck = false;
    }

    /// What the circuit breaker rolls back to: the most recent COMPLETED deployment of
    /// another revision (S2.11).
    fn breaker_rollback_target(&self) -> Option<&Deployment> {
        let primary = &self.deployments[0];
        self.deployments[1..].iter().find(|d| {
            d.rollout_state == RolloutState::Completed
                && d.task_definition != primary.task_definition
        })
    }

    /// What `berth rollback` returns to on a settled service: the most recent release (not a
    /// rollback) that completed and runs another revision than the PRIMARY.
    fn user_rollback_target(&self) -> Option<&Deployment> {
        let primary = &self.deployments[0];
        self.deployments[1..].iter().find(|d| {
            d.rollout_state == RolloutState::Completed
                && !d.rollback
                && d.task_definition != primary.task_definition
        })
    }

    /// One more failed task for `deployment`'s `failedTasks` (S2.7).
    fn count_failure(&mut self, deployment: &str) {
        if let Some(d) = self.deployment(deployment) {
            d.failed_tasks += 1;
            d.updated_at = Utc::now();
        }
    }
}

/// What the controller's parts share: the record, the outside world, the event stream.
struct Shared {
    name: String,
    record: Mutex<Record>,
    router: Option<Arc<dyn TargetRouter>>,
    events: broadcast::Sender<ServiceNotice>,
    steady: watch::Sender<bool>,
    /// Bumped on every event and deployment change: what `berth deploy` waits on.
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding the lock leaves a record that is still consistent enough to
        // show and to stop: keep going.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, record: &mut Record, message: String) {
        tracing::info!(service = %self.name, "{message}");
        let event = ServiceEvent {
            created_at: Utc::now(),
            message: message.clone(),
        };
        record.events.push_front(event);
        record.events.truncate(EVENTS_KEPT);
        // Nobody listening is fine.
        let _ = self.events.send(ServiceNotice {
            service: self.name.clone(),
            message,
        });
        self.bump();
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn target_health(&self, target_group: Option<&str>) -> Vec<TargetHealthView> {
        match (&self.router, target_group) {
            (Some(router), Some(tg)) => router.target_health(tg),
            _ => Vec::new(),
        }
    }
}

/// Runs one service's scheduler loop.
pub struct ServiceController {
    shared: Arc<Shared>,
    launcher: Arc<dyn TaskLauncher>,
    commands: mpsc::UnboundedReceiver<ServiceCommand>,
    /// What wakes the controller: the status changes of its tasks, the target health
    /// changes of its target groups and a traffic shift's progress.
    changes: SelectAll<BoxStream<'static, ()>>,
    /// How traffic-shifting runs end: (green deployment, outcome).
    outcomes: mpsc::UnboundedReceiver<(String, Result<ShiftOutcome, String>)>,
    outcomes_tx: mpsc::UnboundedSender<(String, Result<ShiftOutcome, String>)>,
}

/// A handle on a running service controller.
#[derive(Clone)]
pub struct ServiceHandle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<ServiceCommand>,
    join: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl ServiceController {
    /// Starts the controller of one service; it starts the desired tasks at once.
    pub fn spawn(
        settings: ServiceSettings,
        launcher: Arc<dyn TaskLauncher>,
        router: Option<Arc<dyn TargetRouter>>,
        events: broadcast::Sender<ServiceNotice>,
    ) -> ServiceHandle {
        let deployment = Deployment::new_primary(
            settings.task_definition.clone(),
            settings.image.clone(),
            settings.desired_count,
        );
        let record = Record {
            desired_count: settings.desired_count,
            settings: settings.clone(),
            first_deployment: deployment.id.clone(),
            deployments: vec![deployment],
            tasks: Vec::new(),
            stopped: VecDeque::new(),
            events: VecDeque::new(),
            steady: false,
            backoff: Backoff::default(),
            reported_throttle: false,
            reported_stuck: false,
            serving: settings.target_group.clone(),
            shift: None,
        };
        let shared = Arc::new(Shared {
            name: settings.name.clone(),
            record: Mutex::new(record),
            router,
            events,
            steady: watch::Sender::new(false),
            changed: watch::Sender::new(0),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut changes = SelectAll::new();
        if let (Some(router), Some(tg)) = (&shared.router, &settings.target_group) {
            changes.push(router.health_changes(tg));
            if let Some(traffic) = &settings.traffic {
                changes.push(router.health_changes(&traffic.alternate_target_group));
            }
        }
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        let controller = Self {
            shared: shared.clone(),
            launcher,
            commands: rx,
            changes,
            outcomes,
            outcomes_tx,
        };
        let join = tokio::spawn(controller.run());
        ServiceHandle {
            shared,
            commands: tx,
            join: Arc::new(Mutex::new(Some(join))),
        }
    }

    async fn run(mut self) {
        loop {
            let deadline = self.reconcile().await;
            let deadline = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(ServiceCommand::Scale(count)) => self.scale(count),
                    Some(ServiceCommand::Update(update)) => {
                        let mut record = self.shared.lock();
                        record.settings.configuration = update.configuration;
                        record.settings.grace_period = update.grace_period;
                        drop(record);
                        if let Some(count) = update.desired_count {
                            self.scale(count);
                        }
                    }
                    Some(ServiceCommand::Autoscale(count, message)) => {
                        self.scale(count);
                        let mut record = self.shared.lock();
                        self.shared.emit(&mut record, message);
                    }
                    Some(ServiceCommand::Deploy(revision, shifting, reply)) => {
                        let _ = reply.send(self.deploy_command(revision, shifting));
                    }
                    Some(ServiceCommand::Rollback(reply)) => self.rollback_command(reply),
                    Some(ServiceCommand::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                // An empty set yields `None` at once: the branch is then off until a task
                // is added (by a round, which runs before the next select).
                Some(()) = self.changes.next() => {
                    // A burst (a task going DEPROVISIONING → STOPPED) is one round.
                    while let Some(Some(())) = self.changes.next().now_or_never() {}
                }
                Some((id, outcome)) = self.outcomes.recv() => self.finish_shift(&id, outcome),
                () = deadline => {}
            }
        }
    }

    /// `berth deploy`: a rolling deployment, or a traffic-shifting one run by the
    /// [`TrafficShifter`] from the serving target group to the other one (S3.8).
    fn deploy_command(
        &mut self,
        revision: Revision,
        shifting: Option<ShiftPlan>,
    ) -> Result<String, String> {
        let name = self.shared.name.clone();
        let (traffic, blue_target_group, blue_deployment) = {
            let record = self.shared.lock();
            if record.shift.is_some() {
                return Err(format!(
                    "a traffic-shifting deployment of service {name} is under way: wait for it to end, or stop it with `berth rollback`"
                ));
            }
            (
                record.settings.traffic.clone(),
                record.serving.clone(),
                record.deployments[0].id.clone(),
            )
        };
        let Some(plan) = shifting else {
            return Ok(self.deploy(revision, false, None));
        };
        let (Some(traffic), Some(blue), Some(primary)) = (
            traffic,
            blue_target_group,
            self.shared.lock().settings.target_group.clone(),
        ) else {
            return Err(format!(
                "service {name} has no target group: blue/green, canary and linear shift load-balancer traffic"
            ));
        };
        let green = if blue == primary {
            traffic.alternate_target_group.clone()
        } else {
            primary
        };
        let id = self.deploy(revision, false, None);
        let (progress, progress_rx) = watch::channel(ShiftProgress::start());
        let (green_ready, mut ready_rx) = watch::channel(false);
        let rollback = CancellationToken::new();
        {
            let mut record = self.shared.lock();
            if let Some(d) = record.deployment(&id) {
                d.strategy = match plan.strategy {
                    Shifting::BlueGreen { .. } => DeploymentStrategy::BlueGreen,
                    Shifting::Canary { .. } => DeploymentStrategy::Canary,
                    Shifting::Linear { .. } => DeploymentStrategy::Linear,
                };
                d.lifecycle_stage = Some(Stage::PreScaleUp.name().to_owned());
            }
            record.shift = Some(ActiveShift {
                green_deployment: id.clone(),
                blue_deployment,
                green_target_group: green.clone(),
                progress: progress_rx.clone(),
                green_ready,
                rollback: rollback.clone(),
                waiting: Vec::new(),
                failure: None,
            });
        }
        self.changes.push(progress_changes(progress_rx));
        let run = traffic.shifter.shift(ShiftRun {
            plan,
            blue,
            green,
            green_ready: Box::pin(async move {
                // The sender is dropped only with the shift, which then no longer waits.
                let _ = ready_rx.wait_for(|ready| *ready).await;
            }),
            rollback,
            progress,
        });
        let outcomes = self.outcomes_tx.clone();
        let green_deployment = id.clone();
        tokio::spawn(async move {
            let _ = outcomes.send((green_deployment, run.await));
        });
        Ok(id)
    }

    /// `berth rollback`: during a traffic shift, all traffic returns to blue first (the
    /// answer waits for it); otherwise at once.
    fn rollback_command(&self, reply: oneshot::Sender<Result<String, String>>) {
        let mut record = self.shared.lock();
        if let Some(shift) = record.shift.as_mut()
            && shift.stage() != Stage::CleanUp
        {
            shift.rollback.cancel();
            shift.waiting.push(reply);
            return;
        }
        drop(record);
        let _ = reply.send(self.rollback());
    }

    /// A traffic-shifting run ended: on success green's target group serves and blue is
    /// retired by the next rounds (no longer held by the shift); otherwise green's
    /// deployment is FAILED and a rollback deployment adopts blue's tasks, which kept
    /// serving, while green's are stopped (S3.8, S3.13).
    fn finish_shift(&mut self, id: &str, outcome: Result<ShiftOutcome, String>) {
        let mut record = self.shared.lock();
        if record
            .shift
            .as_ref()
            .is_none_or(|s| s.green_deployment != id)
        {
            return;
        }
        let Some(shift) = record.shift.take() else {
            return;
        };
        let name = self.shared.name.clone();
        let stage = shift.stage();
        let reason = match outcome {
            Ok(ShiftOutcome::Completed) => {
                record.serving = Some(shift.green_target_group.clone());
                if let Some(d) = record.deployment(id) {
                    d.lifecycle_stage = Some(Stage::CleanUp.name().to_owned());
                }
                drop(record);
                self.shared.bump();
                // Asked during clean-up: blue is going, so roll back as on any deployment.
                for reply in shift.waiting {
                    let _ = reply.send(self.rollback());
                }
                return;
            }
            Ok(ShiftOutcome::RolledBack(RollbackCause::HookFailed)) => format!(
                "ECS deployment {id} rolled back: the {} lifecycle hook failed.",
                stage.name()
            ),
            Ok(ShiftOutcome::RolledBack(RollbackCause::Requested)) => {
                shift.failure.clone().unwrap_or_else(|| {
                    format!(
                        "ECS deployment {id} stopped: rolling back to deploymentId {}.",
                        shift.blue_deployment
                    )
                })
            }
            Err(error) => format!("ECS deployment {id} failed: the traffic shift failed: {error}."),
        };
        let blue = record
            .deployments
            .iter()
            .find(|d| d.id == shift.blue_deployment)
            .cloned();
        if let Some(green) = record.deployment(id)
            && green.rollout_state == RolloutState::InProgress
        {
            green.fail(reason);
            self.shared
                .emit(&mut record, events::deployment_failed(&name, id));
        }
        let Some(blue) = blue else {
            for reply in shift.waiting {
                let _ = reply.send(Err(format!(
                    "service {name} has no deployment to return to"
                )));
            }
            return;
        };
        self.shared
            .emit(&mut record, events::rolling_back(&name, &blue.id));
        drop(record);
        let rollback = self.deploy(
            Revision {
                task_definition: blue.task_definition,
                image: blue.image,
            },
            true,
            Some(format!("rolling back to deploymentId {}.", blue.id)),
        );
        for reply in shift.waiting {
            let _ = reply.send(Ok(rollback.clone()));
        }
    }

    /// A new PRIMARY deployment of `revision` (S1.28); returns its id.
    fn deploy(&self, revision: Revision, rollback: bool, reason: Option<String>) -> String {
        let mut record = self.shared.lock();
        let mut deployment = Deployment::new_primary(
            revision.task_definition,
            revision.image,
            record.desired_count,
        );
        deployment.rollback = rollback;
        if let Some(reason) = reason {
            deployment.rollout_state_reason = reason;
        }
        let id = deployment.id.clone();
        record.push_deployment(deployment);
        self.shared.steady.send_replace(false);
        drop(record);
        self.shared.bump();
        id
    }

    /// `berth rollback`: during a deployment, fail it and return to the last COMPLETED one
    /// (S2.11, S2.15); on a settled service, deploy the last release before the running one.
    fn rollback(&self) -> Result<String, String> {
        let mut record = self.shared.lock();
        let in_progress = record.deployments[0].rollout_state == RolloutState::InProgress
            && record.deployments[0].id != record.first_deployment;
        let target = if in_progress {
            record.breaker_rollback_target()
        } else {
            record.user_rollback_target()
        };
        let Some(target) = target.cloned() else {
            return Err(format!(
                "service {} has no earlier completed deployment of another revision to roll back to",
                self.shared.name
            ));
        };
        let name = self.shared.name.clone();
        let reason = format!("rolling back to deploymentId {}.", target.id);
        if in_progress {
            let primary = record.primary();
            primary.fail(format!(
                "ECS deployment {} stopped: rolling back to deploymentId {}.",
                primary.id, target.id
            ));
            let failed = primary.id.clone();
            self.shared
                .emit(&mut record, events::deployment_stopped(&name, &failed));
        }
        self.shared
            .emit(&mut record, events::rolling_back(&name, &target.id));
        drop(record);
        Ok(self.deploy(
            Revision {
                task_definition: target.task_definition,
                image: target.image,
            },
            true,
            Some(reason),
        ))
    }

    /// The circuit breaker tripped on the PRIMARY deployment (S2.6, S2.9–S2.13): FAILED, then
    /// a rollback to the last COMPLETED deployment when asked for and there is one.
    fn fail_deployment(&self, deployment: &str) {
        let mut record = self.shared.lock();
        let name = self.shared.name.clone();
        let rollback = record.settings.circuit_breaker.rollback;
        let Some(failed) = record.deployment(deployment) else {
            return;
        };
        failed.fail("ECS deployment circuit breaker: tasks failed to start.".to_owned());
        self.shared
            .emit(&mut record, events::deployment_failed(&name, deployment));
        // During a traffic shift the rollback returns traffic to blue first (finish_shift).
        if let Some(shift) = record
            .shift
            .as_mut()
            .filter(|s| s.green_deployment == deployment)
        {
            shift.failure = Some("ECS deployment circuit breaker: tasks failed to start.".into());
            shift.rollback.cancel();
            return;
        }
        let target = record.breaker_rollback_target().cloned();
        let Some(target) = target.filter(|_| rollback) else {
            // Without a rollback the deployment stops launching tasks; the earlier
            // revision's tasks keep running (S2.13). With no COMPLETED deployment it stalls
            // the same way (S2.11).
            return;
        };
        self.shared
            .emit(&mut record, events::rolling_back(&name, &target.id));
        drop(record);
        self.deploy(
            Revision {
                task_definition: target.task_definition,
                image: target.image,
            },
            true,
            Some(format!(
                "ECS deployment circuit breaker: rolling back to deploymentId {}.",
                target.id
            )),
        );
    }

    fn scale(&self, count: u32) {
        let mut record = self.shared.lock();
        record.desired_count = count;
        let primary = record.primary();
        primary.desired_count = count;
        primary.updated_at = Utc::now();
    }

    /// Observe, plan, act, until a round changes nothing the planner sees; returns when the
    /// planner's answer can next change without any event.
    async fn reconcile(&mut self) -> Option<Instant> {
        loop {
            // Deadlines after this are still ahead for the planner; one that passes while
            // the round runs makes the next round start at once instead of being lost.
            let observed_at = Instant::now();
            let actions = {
                let mut record = self.shared.lock();
                self.harvest(&mut record);
                let view = self.observe(&mut record);
                plan(&view)
            };
            if !actions.contains(&Action::SteadyState) {
                let mut record = self.shared.lock();
                if record.steady {
                    record.steady = false;
                    self.shared.steady.send_replace(false);
                }
            }
            let acted = actions.iter().any(|action| {
                matches!(
                    action,
                    Action::StartTasks { .. }
                        | Action::StopTask { .. }
                        | Action::MarkUnhealthy { .. }
                )
            });
            for action in actions {
                self.execute(action).await;
            }
            if !acted {
                return next_deadline(&self.shared.lock(), observed_at);
            }
        }
    }

    /// Takes note of tasks that stopped: crashes are deregistered after the fact (S4.23) and
    /// counted toward the back-off when they never became healthy.
    fn harvest(&self, record: &mut Record) {
        let now = Instant::now();
        let mut index = 0;
        while index < record.tasks.len() {
            if !record.tasks[index].task.snapshot().last_status.is_stopped() {
                index += 1;
                continue;
            }
            let tracked = record.tasks.remove(index);
            if !tracked.stop_requested {
                if let (Some(router), Some(tg), true) = (
                    &self.shared.router,
                    &tracked.target_group,
                    tracked.registered,
                ) {
                    router.deregister(tg, tracked.target());
                    self.shared
                        .emit(record, events::deregistered(&self.shared.name, 1, tg));
                }
                if !tracked.was_healthy {
                    record.backoff.record_failure(now);
                    record.count_failure(&tracked.deployment);
                }
            }
            record.stopped.push_front(Stopped {
                task: tracked.task.snapshot(),
                deployment: tracked.deployment,
                task_definition: tracked.task_definition,
            });
        }
        forget_stopped_before(&mut record.stopped, Utc::now() - STOPPED_KEPT_FOR);
    }

    fn observe(&self, record: &mut Record) -> ServiceView {
        let now = Instant::now();
        let target_group = record.serving.clone();
        let mut targets: std::collections::HashMap<Option<String>, Vec<TargetHealthView>> =
            std::collections::HashMap::new();
        let green_deployment = record.shift.as_ref().map(|s| s.green_deployment.clone());
        let mut green_healthy = 0;
        let mut views = Vec::with_capacity(record.tasks.len());
        // Deployments with a task that became healthy this round (S2.5: the consecutive
        // failure count resets).
        let mut proven: Vec<String> = Vec::new();
        let current_revision = record.deployments[0].task_definition.clone();
        for tracked in &mut record.tasks {
            let snapshot = tracked.task.snapshot();
            let target = live_target(
                targets
                    .entry(tracked.target_group.clone())
                    .or_insert_with(|| self.shared.target_health(tracked.target_group.as_deref())),
                tracked.target(),
            );
            let view = TaskView {
                id: snapshot.task_id.clone(),
                current: tracked.task_definition == current_revision,
                last_status: snapshot.last_status,
                desired_status: snapshot.desired_status,
                age: now.saturating_duration_since(tracked.started),
                container_check: tracked
                    .task
                    .has_health_check()
                    .then_some(snapshot.health_status),
                target,
                unhealthy: tracked.unhealthy.clone(),
            };
            let healthy_now = view.last_status == TaskStatus::Running
                && (target_group.is_none()
                    || view
                        .target
                        .as_ref()
                        .is_some_and(|t| t.state == TargetState::Healthy))
                && view
                    .container_check
                    .is_none_or(|h| h == crate::task::HealthStatus::Healthy);
            if healthy_now && green_deployment.as_ref() == Some(&tracked.deployment) {
                green_healthy += 1;
            }
            if healthy_now && !tracked.was_healthy && view.age >= PROVEN_AFTER {
                tracked.was_healthy = true;
                proven.push(tracked.deployment.clone());
            }
            views.push(view);
        }
        if !proven.is_empty() {
            record.backoff.record_success();
            record.reported_throttle = false;
        }
        for deployment in proven {
            if let Some(d) = record.deployment(&deployment) {
                d.failed_tasks = 0;
            }
        }
        count_tasks(record);
        let desired = record.desired_count;
        let shifting = record.shift.as_ref().map(|shift| {
            if green_healthy >= desired {
                shift
                    .green_ready
                    .send_if_modified(|ready| !std::mem::replace(ready, true));
            }
            (shift.green_deployment.clone(), shift.stage())
        });
        if let Some((green, stage)) = &shifting
            && let Some(d) = record.deployment(green)
            && d.lifecycle_stage.as_deref() != Some(stage.name())
        {
            d.lifecycle_stage = Some(stage.name().to_owned());
            d.updated_at = Utc::now();
            self.shared.bump();
        }
        let primary = &record.deployments[0];
        let breaker = (record.settings.circuit_breaker.enable
            && primary.id != record.first_deployment
            && primary.rollout_state == RolloutState::InProgress)
            .then(|| BreakerView {
                failed_tasks: primary.failed_tasks,
                threshold: CircuitBreaker::threshold(record.desired_count),
            });
        let primary_failed = primary.rollout_state == RolloutState::Failed;
        ServiceView {
            name: self.shared.name.clone(),
            desired_count: record.desired_count,
            configuration: record.settings.configuration,
            grace_period: record.settings.grace_period,
            target_group,
            primary_deployment: record.deployments[0].id.clone(),
            tasks: views,
            throttled: record.backoff.throttled(now),
            primary_failed,
            breaker,
            shifting: shifting.map(|(_, stage)| ShiftingView {
                green_may_start: stage != Stage::PreScaleUp,
            }),
        }
    }

    async fn execute(&mut self, action: Action) {
        match action {
            Action::StartTasks { deployment, count } => self.start_tasks(&deployment, count).await,
            Action::MarkUnhealthy { task, cause } => {
                let mut record = self.shared.lock();
                let message = match &cause {
                    UnhealthyCause::TargetGroup {
                        target_group,
                        port,
                        description,
                    } => events::unhealthy_target(
                        &self.shared.name,
                        &task,
                        *port,
                        target_group,
                        description,
                    ),
                    UnhealthyCause::ContainerHealthCheck => {
                        events::failed_container_health_checks(&self.shared.name, &task)
                    }
                };
                if let Some(tracked) = record.tasks.iter_mut().find(|t| *t.task.id() == task) {
                    tracked.unhealthy = Some(cause);
                }
                self.shared.emit(&mut record, message);
            }
            Action::StopTask { task, code, reason } => self.stop_task(&task, code, reason),
            Action::Throttled => {
                let mut record = self.shared.lock();
                if record.backoff.consecutive_failures() >= REPORT_AFTER
                    && !record.reported_throttle
                {
                    record.reported_throttle = true;
                    self.shared
                        .emit(&mut record, events::unable_to_start(&self.shared.name));
                }
            }
            Action::FailDeployment { deployment } => self.fail_deployment(&deployment),
            Action::Stuck => {
                let mut record = self.shared.lock();
                if !record.reported_stuck {
                    record.reported_stuck = true;
                    self.shared
                        .emit(&mut record, events::stuck(&self.shared.name));
                }
            }
            Action::SteadyState => {
                let mut record = self.shared.lock();
                if !record.steady {
                    record.steady = true;
                    record.reported_stuck = false;
                    let name = self.shared.name.clone();
                    let primary = record.primary();
                    let completed_now = primary.rollout_state == RolloutState::InProgress;
                    primary.complete();
                    let deployment = primary.id.clone();
                    // Only the PRIMARY has tasks left: the others are completely replaced
                    // and leave `deployments` (S2.14, S1.27); their history stays.
                    for d in &mut record.deployments[1..] {
                        if d.status != DeploymentStatus::Inactive {
                            d.status = DeploymentStatus::Inactive;
                            d.running_count = 0;
                            d.pending_count = 0;
                            d.updated_at = Utc::now();
                        }
                    }
                    if completed_now {
                        self.shared.emit(
                            &mut record,
                            events::deployment_completed(&name, &deployment),
                        );
                    }
                    self.shared.emit(&mut record, events::steady_state(&name));
                    self.shared.steady.send_replace(true);
                }
            }
        }
    }

    async fn start_tasks(&mut self, deployment: &str, count: u32) {
        let task_definition = {
            let mut record = self.shared.lock();
            match record.deployment(deployment) {
                Some(d) => d.task_definition.clone(),
                None => return,
            }
        };
        let mut started = Vec::new();
        for _ in 0..count {
            let id = TaskId::random();
            let task = self
                .launcher
                .launch(&self.shared.name, &task_definition, id.clone())
                .await;
            started.push(task);
        }
        let mut record = self.shared.lock();
        let target_group = match &record.shift {
            Some(shift) if shift.green_deployment == deployment => {
                Some(shift.green_target_group.clone())
            }
            _ => record.serving.clone(),
        };
        let ids: Vec<TaskId> = started.iter().map(|t| t.id().clone()).collect();
        self.shared
            .emit(&mut record, events::started(&self.shared.name, &ids));
        let mut registered = 0;
        let now = Instant::now();
        for task in started {
            let mut tracked = Tracked {
                task,
                deployment: deployment.to_owned(),
                task_definition: task_definition.clone(),
                target_group: target_group.clone(),
                unhealthy: None,
                registered: false,
                stop_requested: false,
                was_healthy: false,
                started: now,
            };
            self.changes.push(status_changes(&tracked.task));
            if !tracked.task.snapshot().last_status.is_stopped() {
                // ACTIVATING registers the targets, then the task is RUNNING (S4.2).
                if let (Some(router), Some(tg)) = (&self.shared.router, &target_group) {
                    router.register(tg, tracked.target());
                    tracked.registered = true;
                    registered += 1;
                }
                tracked.task.mark_running();
            }
            record.tasks.push(tracked);
        }
        if let (Some(tg), true) = (&target_group, registered > 0) {
            self.shared.emit(
                &mut record,
                events::registered(&self.shared.name, registered, tg),
            );
        }
    }

    /// DEACTIVATING (deregister, drain), then STOPPING (SIGTERM, SIGKILL): in the background,
    /// so the scheduler keeps watching the other tasks meanwhile.
    fn stop_task(&self, id: &TaskId, code: StopCode, reason: String) {
        let mut record = self.shared.lock();
        let Some(tracked) = record.tasks.iter_mut().find(|t| t.task.id() == id) else {
            return;
        };
        let target_group = tracked.target_group.clone();
        if tracked.stop_requested {
            return;
        }
        tracked.stop_requested = true;
        tracked.task.begin_stop(code, reason.clone());
        let task = tracked.task.clone();
        let drain = match (&self.shared.router, &target_group, tracked.registered) {
            (Some(router), Some(tg), true) => Some((router.clone(), tg.clone(), tracked.target())),
            _ => None,
        };
        // A task stopped for failing its health checks is a failed task of its deployment
        // (S2.6 stage 2, S2.7): without this a release with a wrong health-check path would
        // never trip the circuit breaker.
        if tracked.unhealthy.is_some() {
            let deployment = tracked.deployment.clone();
            record.count_failure(&deployment);
        }
        self.shared.emit(
            &mut record,
            events::stopped(&self.shared.name, std::slice::from_ref(id)),
        );
        if let Some((router, tg, target)) = &drain {
            router.deregister(tg, *target);
            self.shared
                .emit(&mut record, events::deregistered(&self.shared.name, 1, tg));
            self.shared
                .emit(&mut record, events::draining(&self.shared.name, 1));
        }
        drop(record);
        tokio::spawn(async move {
            if let Some((router, tg, target)) = drain {
                router.wait_drained(&tg, target).await;
            }
            task.stop(code, reason).await;
        });
    }

    /// Ordered stop of the whole service: deregister every target, wait for them to drain,
    /// then stop every task.
    async fn shutdown(&mut self) {
        let (tasks, drains) = {
            let mut record = self.shared.lock();
            if let Some(shift) = &record.shift {
                shift.rollback.cancel();
            }
            let target_group = record.serving.clone();
            let mut tasks = Vec::new();
            let mut drains = Vec::new();
            let mut stopping = Vec::new();
            for tracked in &mut record.tasks {
                if !tracked.stop_requested {
                    tracked.stop_requested = true;
                    tracked
                        .task
                        .begin_stop(StopCode::UserInitiated, reasons::USER_STOPPED);
                    stopping.push(tracked.task.id().clone());
                    if let (Some(router), Some(tg), true) = (
                        &self.shared.router,
                        &tracked.target_group,
                        tracked.registered,
                    ) {
                        router.deregister(tg, tracked.target());
                        drains.push(router.wait_drained(tg, tracked.target()));
                    }
                }
                tasks.push(tracked.task.clone());
            }
            if !stopping.is_empty() {
                self.shared
                    .emit(&mut record, events::stopped(&self.shared.name, &stopping));
            }
            if let (Some(tg), false) = (&target_group, drains.is_empty()) {
                let n = drains.len();
                self.shared
                    .emit(&mut record, events::deregistered(&self.shared.name, n, tg));
                self.shared
                    .emit(&mut record, events::draining(&self.shared.name, n));
            }
            (tasks, drains)
        };
        let mut set = JoinSet::new();
        for drain in drains {
            set.spawn(drain);
        }
        while set.join_next().await.is_some() {}
        let mut set = JoinSet::new();
        for task in tasks {
            set.spawn(async move {
                task.stop(StopCode::UserInitiated, reasons::USER_STOPPED)
                    .await
            });
        }
        while set.join_next().await.is_some() {}
        let mut record = self.shared.lock();
        self.harvest(&mut record);
        record.desired_count = 0;
    }
}

/// The next time the plan can change with nothing else happening: the start back-off ends,
/// a task's grace period ends (its failed health checks start to count), or a task has run
/// long enough for its health to count ([`PROVEN_AFTER`]).
fn next_deadline(record: &Record, now: Instant) -> Option<Instant> {
    let grace = record.settings.grace_period;
    let task_deadlines = record
        .tasks
        .iter()
        .filter(|t| !t.stop_requested)
        .flat_map(|t| {
            let proven = (!t.was_healthy).then_some(t.started + PROVEN_AFTER);
            [Some(t.started + grace), proven]
        })
        .flatten();
    record
        .backoff
        .retry_at()
        .into_iter()
        .chain(task_deadlines)
        .filter(|&at| at > now)
        .min()
}

/// Each PRIMARY or ACTIVE deployment's running and pending counts, from its live tasks.
fn count_tasks(record: &mut Record) {
    for deployment in &mut record.deployments {
        if deployment.status == DeploymentStatus::Inactive {
            continue;
        }
        let mine = || {
            record
                .tasks
                .iter()
                .filter(|t| t.deployment == deployment.id)
                .map(|t| t.task.snapshot().last_status)
        };
        deployment.running_count = mine().filter(|s| *s == TaskStatus::Running).count() as u32;
        deployment.pending_count = mine().filter(|s| s.is_starting()).count() as u32;
    }
}

/// A live task's target: the newest registration at its address (an earlier task's target
/// on the same port may still be listed as draining, S5.20).
fn live_target(targets: &[TargetHealthView], addr: SocketAddr) -> Option<TargetHealthView> {
    targets.iter().rfind(|t| t.target == addr).cloned()
}

/// Drops the stopped tasks (newest first) that stopped before `cutoff`.
fn forget_stopped_before(stopped: &mut VecDeque<Stopped>, cutoff: DateTime<Utc>) {
    while stopped
        .back()
        .is_some_and(|s| s.task.stopped_at.is_some_and(|at| at < cutoff))
    {
        stopped.pop_back();
    }
}

/// Yields on every stage change of a traffic shift, and ends with it.
fn progress_changes(receiver: watch::Receiver<ShiftProgress>) -> BoxStream<'static, ()> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        Some(((), receiver))
    })
    .boxed()
}

/// Yields on every status or health change of `task`, and ends once it is STOPPED.
fn status_changes(task: &Task) -> BoxStream<'static, ()> {
    futures_util::stream::unfold(Some(task.subscribe()), |receiver| async move {
        let mut receiver = receiver?;
        receiver.changed().await.ok()?;
        let stopped = receiver.borrow_and_update().last_status.is_stopped();
        Some(((), (!stopped).then_some(receiver)))
    })
    .boxed()
}

impl ServiceHandle {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn scale(&self, count: u32) {
        let _ = self.commands.send(ServiceCommand::Scale(count));
    }

    /// Applies the settings of a release (before its deployment is started).
    pub fn update(&self, update: ServiceUpdate) {
        let _ = self.commands.send(ServiceCommand::Update(update));
    }

    /// Sets the desired count for autoscaling, with `message` as the service event.
    pub fn autoscale(&self, count: u32, message: String) {
        let _ = self
            .commands
            .send(ServiceCommand::Autoscale(count, message));
    }

    /// Whether the service is in steady state now, and changes of it.
    pub fn steady(&self) -> watch::Receiver<bool> {
        self.shared.steady.subscribe()
    }

    /// Stops every task in order and ends the controller.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(ServiceCommand::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        let join = self.join.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(join) = join {
            let _ = join.await;
        }
    }

    /// Live tasks (for recovery bookkeeping: pids, ports, stop timeouts).
    pub fn live_tasks(&self) -> Vec<Task> {
        let record = self.shared.lock();
        record.tasks.iter().map(|t| t.task.clone()).collect()
    }

    pub fn status(&self) -> ServiceStatus {
        let mut record = self.shared.lock();
        forget_stopped_before(&mut record.stopped, Utc::now() - STOPPED_KEPT_FOR);
        // A stopped task's target may still be draining in either of the service's groups.
        let targets: Vec<TargetHealthView> = [
            record.settings.target_group.clone(),
            record
                .settings
                .traffic
                .as_ref()
                .map(|t| t.alternate_target_group.clone()),
        ]
        .into_iter()
        .flatten()
        .flat_map(|tg| self.shared.target_health(Some(&tg)))
        .collect();
        let mut tasks: Vec<ServiceTaskStatus> = record
            .tasks
            .iter()
            .map(|tracked| ServiceTaskStatus {
                task: tracked.task.snapshot(),
                deployment_id: tracked.deployment.clone(),
                task_definition: tracked.task_definition.clone(),
                target_health: live_target(
                    &self.shared.target_health(tracked.target_group.as_deref()),
                    tracked.target(),
                ),
            })
            .collect();
        tasks.extend(record.stopped.iter().map(|stopped| {
            ServiceTaskStatus {
                task: stopped.task.clone(),
                deployment_id: stopped.deployment.clone(),
                task_definition: stopped.task_definition.clone(),
                // A stopped task's target shows `draining` until its delay ends (S5.20).
                target_health: targets
                    .iter()
                    .find(|t| {
                        t.state == TargetState::Draining
                            && t.target
                                == SocketAddr::from((Ipv4Addr::LOCALHOST, stopped.task.port))
                    })
                    .cloned(),
            }
        }));
        let running_count = tasks
            .iter()
            .filter(|t| t.task.last_status == TaskStatus::Running)
            .count() as u32;
        let pending_count = tasks
            .iter()
            .filter(|t| t.task.last_status.is_starting())
            .count() as u32;
        ServiceStatus {
            service_name: self.shared.name.clone(),
            desired_count: record.desired_count,
            running_count,
            pending_count,
            target_group: record.serving.clone(),
            health_check_grace_period_seconds: record.settings.grace_period.as_secs(),
            deployment_configuration: record.settings.configuration,
            steady_state: record.steady,
            deployments: record
                .deployments
                .iter()
                .filter(|d| d.status != DeploymentStatus::Inactive)
                .cloned()
                .collect(),
            tasks,
            events: record.events.iter().cloned().collect(),
            autoscaling: None,
        }
    }

    /// Every deployment kept, newest first (`berth deployments`).
    pub fn deployments(&self) -> Vec<Deployment> {
        self.shared.lock().deployments.clone()
    }

    /// Bumped on every service event and deployment change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Starts a new rolling deployment of `revision` (S1.28); its id.
    pub async fn deploy(&self, revision: Revision) -> Result<String, String> {
        self.deploy_with(revision, None).await
    }

    /// Starts a new deployment of `revision`, rolling or shifting traffic (S3.8); its id.
    pub async fn deploy_with(
        &self,
        revision: Revision,
        shifting: Option<ShiftPlan>,
    ) -> Result<String, String> {
        let gone = || format!("service {} is shutting down", self.shared.name);
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(ServiceCommand::Deploy(revision, shifting, tx))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Stops the deployment in progress and rolls back, or deploys the last release before
    /// the running one; the rollback deployment's id.
    pub async fn rollback(&self) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(ServiceCommand::Rollback(tx))
            .map_err(|_| format!("service {} is shutting down", self.shared.name))?;
        rx.await
            .map_err(|_| format!("service {} is shutting down", self.shared.name))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped_task(n: u32, at: DateTime<Utc>) -> Stopped {
        let mut task = TaskSnapshot::provisioning(TaskId::from(format!("{n:032x}")), 4000);
        task.last_status = TaskStatus::Stopped;
        task.stopped_at = Some(at);
        Stopped {
            task,
            deployment: "ecs-svc/1234567890123456789".to_owned(),
            task_definition: "backend:1".to_owned(),
        }
    }

    /// S4.4: stopped tasks are shown for an hour, however many there are (it used to keep the
    /// last 20).
    #[test]
    fn stopped_tasks_are_kept_for_an_hour_not_by_count() {
        let now = Utc::now();
        // Newest first, as `harvest` pushes them: 30 within the hour, then 2 older.
        let mut stopped: VecDeque<_> = (0..30)
            .map(|n| stopped_task(n, now - chrono::TimeDelta::minutes(i64::from(n))))
            .chain([
                stopped_task(30, now - chrono::TimeDelta::minutes(61)),
                stopped_task(31, now - chrono::TimeDelta::minutes(90)),
            ])
            .collect();
        forget_stopped_before(&mut stopped, now - STOPPED_KEPT_FOR);
        assert_eq!(stopped.len(), 30);
        assert!(
            stopped
                .iter()
                .all(|s| s.task.stopped_at.unwrap() >= now - STOPPED_KEPT_FOR)
        );
    }
}
