//! `berth rollback SERVICE`: stop the deployment in progress and return to the last
//! completed one, or on a settled service deploy the release before the running one.

use berth_local::control::{Request, Response};

use crate::commands::rollout::follow;
use crate::commands::running::RunningService;
use crate::context::Context;
use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (its key in the stack file, like `backend`, or its ECS name).
    pub service: String,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let mut running = RunningService::connect(cx, &args.service).await?;
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
