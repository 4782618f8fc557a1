//! What the verbs that talk to a running berth share: finding it, naming a service.

use std::path::PathBuf;

use berth_local::cleanup::Recovery;
use berth_local::control::{ControlClient, ControlError};
use berth_spec::{Service, Stack};

use crate::context::Context;
use crate::error::CliError;

/// `.berth/run` of the stack's local environment.
pub fn local_run_dir(cx: &Context, stack: &Stack) -> Result<PathBuf, CliError> {
    let environment = cx.environment(stack)?;
    berth_local::runtime::run_dir(stack, environment).map_err(|e| CliError::Usage(e.into()))
}

/// Connects to the running berth; a clear error when none runs.
pub async fn connect(run_dir: &std::path::Path) -> Result<ControlClient, CliError> {
    ControlClient::connect(run_dir).await.map_err(|e| match e {
        ControlError::NotRunning { .. } => CliError::Failed(
            anyhow::Error::new(e)
                .context("the stack is not running here: start it with `berth up`"),
        ),
        other => CliError::Failed(other.into()),
    })
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
