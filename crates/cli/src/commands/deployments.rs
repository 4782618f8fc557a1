//! `berth deployments SERVICE`: the service's deployments, newest first, with their outcome.

use berth_local::control::{Request, Response};
use berth_local::service::Deployment;
use berth_spec::status::RolloutState;

use crate::commands::running::RunningService;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (its key in the stack file, like `backend`, or its ECS name).
    pub service: String,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let mut running = RunningService::connect(cx, &args.service).await?;
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
