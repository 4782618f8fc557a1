//! What the verbs that talk to a running berth share: finding it, naming a service.

use std::path::PathBuf;

use berth_local::cleanup::{Leftovers, Recovery, leftovers};
use berth_local::control::{ControlClient, ControlError, Request, Response};
use berth_spec::{Service, Stack};

use crate::context::Context;
use crate::error::CliError;

/// `.berth/run` of the stack's local environment.
pub fn local_run_dir(cx: &Context, stack: &Stack) -> Result<PathBuf, CliError> {
    let environment = cx.environment(stack)?;
    berth_local::runtime::run_dir(stack, environment).map_err(|e| CliError::Usage(e.into()))
}

/// Connects to the running berth; a clear error when none runs (saying what a killed berth
/// left running), or when the running one is another user's.
pub async fn connect(run_dir: &std::path::Path) -> Result<ControlClient, CliError> {
    ControlClient::connect(run_dir)
        .await
        .map_err(|e| connect_error(run_dir, e))
}

/// The error to show when no berth answers on the control socket.
pub fn connect_error(run_dir: &std::path::Path, e: ControlError) -> CliError {
    match e {
        ControlError::PermissionDenied { .. } => CliError::Failed(anyhow::Error::new(e).context(
            "cannot reach the berth of this stack: permission denied (run this as the user who ran `berth up`, or as root)",
        )),
        ControlError::NotRunning { .. } => match leftovers(run_dir) {
            Some(left) => CliError::Failed(anyhow::anyhow!(leftovers_text(&left))),
            None => CliError::Failed(
                anyhow::Error::new(e)
                    .context("the stack is not running here: start it with `berth up`"),
            ),
        },
        other => CliError::Failed(other.into()),
    }
}

/// "berth was killed, and this still runs": the orphans and what cleans them.
fn leftovers_text(left: &Leftovers) -> String {
    let mut running = Vec::new();
    if !left.tasks.is_empty() {
        let pids: Vec<String> = left.tasks.iter().map(|t| t.pid.to_string()).collect();
        running.push(format!(
            "{} task(s) (pids {})",
            left.tasks.len(),
            pids.join(", ")
        ));
    }
    if let Some(pid) = left.postgres_pid {
        running.push(format!("PostgreSQL (pid {pid})"));
    }
    format!(
        "the stack is not running here: the berth that ran it (pid {}) is gone, but {} it started still run(s); `berth up` cleans them up and starts the stack again, `berth down` cleans them up",
        left.berth_pid,
        running.join(" and ")
    )
}

/// Tells what was cleaned up after a berth that was killed.
pub fn report_recovery(cx: &Context, recovery: &Recovery) {
    if let Some(pid) = recovery.stale_berth {
        cx.output.note(format!(
            "cleaned up after berth pid {pid}, which was killed: {} task process groups stopped{}",
            recovery.killed_tasks.len(),
            if recovery.stopped_postgres {
                ", PostgreSQL stopped"
            } else {
                ""
            }
        ));
        // The next start runs each service on the stack file's revision alone.
        for d in &recovery.interrupted {
            cx.output.note(format!(
                "berth was killed during deployment {} of service {} ({} replacing {}): it was interrupted; the service starts again on one revision, from the stack file",
                d.deployment_id,
                d.service,
                d.task_definition,
                d.replacing.join(", ")
            ));
        }
    }
}

/// A service of the stack file and a connection to the berth running the stack: what
/// `deploy`, `rollback` and `deployments` start from.
pub struct RunningService {
    pub service: Service,
    pub client: ControlClient,
}

impl RunningService {
    /// Finds the service `name` of the loaded stack and connects to the berth running it.
    pub async fn connect_in(cx: &Context, stack: &Stack, name: &str) -> Result<Self, CliError> {
        let service = find_service(cx, stack, name)?.clone();
        let client = connect(&local_run_dir(cx, stack)?).await?;
        Ok(Self { service, client })
    }

    /// Sends one request; a lost berth fails the operation.
    pub async fn request(&mut self, request: &Request) -> Result<Response, CliError> {
        self.client
            .request(request)
            .await
            .map_err(|e| CliError::Failed(e.into()))
    }
}

/// The stack's service named `name`: its key in the stack file (`backend`) or its ECS name.
pub fn find_service<'s>(
    cx: &Context,
    stack: &'s Stack,
    name: &str,
) -> Result<&'s Service, CliError> {
    stack
        .service(name)
        .or_else(|| stack.services.iter().find(|s| s.service_name == name))
        .ok_or_else(|| {
            let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
            CliError::Usage(anyhow::anyhow!(
                "no service `{name}` in {} (services: {})",
                cx.file.display(),
                names.join(", ")
            ))
        })
}
