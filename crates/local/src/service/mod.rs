//! Services: the scheduler that keeps each service's desired count of healthy tasks.
//!
//! [`plan`] decides (pure, table-tested), and [`shift`] walks the traffic-shifting
//! strategies' stages (pure too); [`ServiceController`] observes tasks and targets, asks the
//! planner, and carries the actions out without choosing. The controller reaches
//! processes and the load balancer only through [`TaskLauncher`] and [`TargetRouter`], so it
//! runs the same against the real runtime and against test doubles.
//!
//! The controller does not poll: it wakes when a task's status changes, when the router
//! reports a target health change, on a command, and at the next time the planner's answer
//! can change by itself (a grace period ending, the start back-off expiring).

mod backoff;
mod controller;
pub mod events;
mod plan;
pub mod scaling;
pub mod shift;
mod state;

pub use backoff::Backoff;
pub use controller::{
    Revision, ServiceCommand, ServiceController, ServiceHandle, ServiceSettings, ServiceTraffic,
    ServiceUpdate,
};
pub use plan::{Action, BreakerView, ServiceView, ShiftingView, TaskView, plan};
pub use state::{
    AutoscalingStatus, CircuitBreaker, Deployment, DeploymentConfiguration, DeploymentStatus,
    DeploymentStrategy, RolloutState, RuleWeight, ScalingActivity, ServiceEvent, ServiceNotice,
    ServiceStatus, ServiceTaskStatus, TargetHealthView, TargetState, UnhealthyCause,
    new_deployment_id,
};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

pub use futures_util::stream::BoxStream;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::task::{Task, TaskId};
use shift::{ShiftOutcome, ShiftPlan, ShiftProgress};

/// A boxed future, for the object-safe seams below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts a service's tasks: resolves the image, secrets, port and log stream, then spawns.
pub trait TaskLauncher: Send + Sync + 'static {
    /// Starts task `id` of `service` from revision `task_definition` (`<family>:<n>`).
    /// Failures are reported as a task that is already STOPPED with `TaskFailedToStart`,
    /// never as an error.
    fn launch<'a>(
        &'a self,
        service: &'a str,
        task_definition: &'a str,
        id: TaskId,
    ) -> BoxFuture<'a, Task>;
}

/// The load balancer as the scheduler drives it.
pub trait TargetRouter: Send + Sync + 'static {
    fn register(&self, target_group: &str, target: SocketAddr);
    /// Starts draining the target (it stops getting new requests).
    fn deregister(&self, target_group: &str, target: SocketAddr);
    /// Resolves once the deregistered target has no request in flight, or its
    /// deregistration delay has passed.
    fn wait_drained(&self, target_group: &str, target: SocketAddr) -> BoxFuture<'static, ()>;
    fn target_health(&self, target_group: &str) -> Vec<TargetHealthView>;
    /// The listener rules that forward to `target_group`, with its weight in each.
    fn traffic_weights(&self, target_group: &str) -> Vec<RuleWeight>;
    /// Yields after a target of `target_group` changed health (registrations included), and
    /// ends when the router is gone. Several changes may come as one item and an item may
    /// change nothing: the scheduler only takes it as a cue to read `target_health` again.
    fn health_changes(&self, target_group: &str) -> BoxStream<'static, ()>;
    /// Requests routed to `target_group`'s targets so far, where the router counts them
    /// (autoscaling on requests per target needs it).
    fn request_count(&self, _target_group: &str) -> Option<u64> {
        None
    }
}

/// One traffic-shifting deployment for a [`TrafficShifter`] to carry out: from `blue`'s
/// target group to `green`'s.
pub struct ShiftRun {
    pub plan: ShiftPlan,
    pub blue: String,
    pub green: String,
    /// Resolves once every green task is running and healthy in `green` (S3.10 `SCALE_UP`).
    pub green_ready: BoxFuture<'static, ()>,
    /// `berth rollback` (or the circuit breaker) during the deployment.
    pub rollback: CancellationToken,
    pub progress: watch::Sender<ShiftProgress>,
}

/// Carries out a traffic-shifting deployment's stages on the load balancer: hooks, test and
/// production weights, bakes ([`shift::decide`]). Starting green's tasks (once the stage
/// reaches `SCALE_UP`) and retiring blue's stay the controller's.
pub trait TrafficShifter: Send + Sync + 'static {
    /// Runs until clean-up begins or all traffic is back on blue; an error means the
    /// balancer refused a change (traffic is then left where it was).
    fn shift(&self, run: ShiftRun) -> BoxFuture<'static, Result<ShiftOutcome, String>>;
}
