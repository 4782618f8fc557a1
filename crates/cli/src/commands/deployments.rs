//! `berth deployments SERVICE`: the service's deployments, newest first, with their outcome;
//! on an AWS environment, ECS's ListServiceDeployments (`commands::aws_ops::deployments`).

use berth_local::control::{Request, Response};
use berth_local::service::Deployment;
use berth_spec::status::RolloutState;

use crate::commands::running::{RunningService, find_service};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Table;

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
        return crate::commands::aws_ops::deployments(cx, &stack, environment, &args).await;
    }
    let mut running = RunningService::connect_in(cx, &stack, &args.service).await?;
    let request = Request::Deployments {
        service: running.service.service_name.clone(),
    };
    let response = running.request(&request).await?;
    if let Response::Error { message } = response {
        return Err(CliError::Failed(anyhow::anyhow!(message)));
    }
    let Response::Deployments { deployments } = response else {
        return Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the deployments request with {response:?}"
        )));
    };
    if cx.output.is_json() {
        cx.output.json(&deployments)?;
    } else {
        cx.output.table(&table(&deployments));
    }
    Ok(())
}

fn table(deployments: &[Deployment]) -> Table {
    let mut table = Table::new([
        "DEPLOYMENT",
        "STATUS",
        "REVISION",
        "IMAGE",
        "STARTED",
        "FINISHED",
        "OUTCOME",
        "REASON",
    ]);
    for d in deployments {
        let outcome = match (d.rollout_state, d.rollback) {
            (RolloutState::Completed, true) => "COMPLETED (rollback)".to_owned(),
            (state, _) => state.to_string(),
        };
        table.row([
            d.id.clone(),
            d.status.to_string(),
            d.task_definition.clone(),
            d.image.clone(),
            d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            d.finished_at
                .map_or_else(String::new, |t| t.format("%H:%M:%S").to_string()),
            outcome,
            d.rollout_state_reason.clone(),
        ]);
    }
    table
}
