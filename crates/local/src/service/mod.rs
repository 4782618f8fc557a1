//! Services: the scheduler that keeps each service's desired count of healthy tasks.
//!
//! [`plan`] decides (pure, table-tested); [`ServiceController`] observes tasks and targets,
//! asks the planner, and carries the actions out without choosing. The controller reaches
//! processes and the load balancer only through [`TaskLauncher`] and [`TargetRouter`], so it
//! runs the same against the real runtime and against test doubles.

mod backoff;
mod controller;
pub mod events;
mod plan;
mod state;

pub use backoff::Backoff;
pub use controller::{ServiceCommand, ServiceController, ServiceHandle, ServiceSettings};
pub use plan::{Action, ServiceView, TaskView, plan};
pub use state::{
    Deployment, DeploymentConfiguration, DeploymentStatus, DeploymentStrategy, RolloutState,
    ServiceEvent, ServiceStatus, ServiceTaskStatus, TargetHealthView, TargetState, UnhealthyCause,
    new_deployment_id,
};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::task::{Task, TaskId};

/// A boxed future, for the object-safe seams below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Starts a service's tasks: resolves the image, secrets, port and log stream, then spawns.
pub trait TaskLauncher: Send + Sync + 'static {
    /// Starts task `id` of `service` for `deployment`. Failures are reported as a task that
    /// is already STOPPED with `TaskFailedToStart`, never as an error.
    fn launch<'a>(
        &'a self,
        service: &'a str,
        deployment: &'a str,
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
}
