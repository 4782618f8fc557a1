//! `berth rollback SERVICE`: stop the deployment in progress and return to the last
//! completed one, or on a settled service deploy the release before the running one; on an
//! AWS environment, StopServiceDeployment(ROLLBACK) or the previous completed revision
//! (`commands::aws_ops::rollback`).

use berth_local::control::{Request, Response};

use crate::commands::rollout::follow;
use crate::commands::running::{RunningService, find_service};
use crate::context::Context;
use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (its key in the stack file, like `backend`, or its ECS name).
    pub service: String,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        // An unknown service is the caller's mistake (exit 2), said before connecting.
        find_service(cx, &stack, &args.service)?;
        return crate::commands::aws_ops::rollback(cx, &stack, environment, &args).await;
    }
    let mut running = RunningService::connect_in(cx, &stack, &args.service).await?;
    let request = Request::Rollback {
        service: running.service.service_name.clone(),
    };
    match running.request(&request).await? {
        Response::Deploying(started) => follow(cx, &mut running.client, started).await,
        // Nothing to roll back to: the request cannot be met as asked.
        Response::Error { message } => Err(CliError::Usage(anyhow::anyhow!(message))),
        other => Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the rollback request with {other:?}"
        ))),
    }
}
