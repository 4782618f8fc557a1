//! `berth down`: ask the running berth to stop everything in order, and wait. When the berth
//! that ran the stack was killed, clean up what it left instead.

use berth_local::cleanup::{left_behind, leftovers_message, recover};
use berth_local::control::{ControlClient, ControlError, Request, Response};

use crate::commands::running::{connect_error, local_run_dir, report_recovery};
use crate::context::Context;
use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// On an AWS environment: delete without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// On an AWS environment: delete the RDS instance without a final snapshot.
    #[arg(long)]
    pub skip_final_snapshot: bool,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        let confirm = crate::commands::aws::Confirm { yes: args.yes };
        return crate::commands::aws::down(
            cx,
            &stack,
            environment,
            confirm,
            args.skip_final_snapshot,
        )
        .await;
    }
    let run_dir = local_run_dir(cx, &stack)?;
    match ControlClient::connect(&run_dir).await {
        // Another user's berth: nothing here may be touched (not even its leftovers).
        Err(e @ ControlError::PermissionDenied { .. }) => Err(connect_error(&run_dir, e)),
        Ok(mut client) => {
            cx.output
                .note("stopping: draining targets, then tasks, balancer and database");
            match client.request(&Request::Down).await {
                Ok(Response::Stopped) | Err(ControlError::NoAnswer) => {}
                Ok(other) => {
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "berth answered the down request with {other:?}"
                    )));
                }
                Err(e) => return Err(CliError::Failed(e.into())),
            }
            if cx.output.is_json() {
                cx.output.json(&serde_json::json!({ "stopped": true }))?;
            } else {
                cx.output.line("stopped");
            }
            Ok(())
        }
        Err(_) => {
            // Nothing answers: maybe a berth was killed and left processes behind.
            let left = left_behind(&run_dir);
            if let Some(longest) = left.iter().map(|task| task.stop_timeout).max() {
                cx.output.note(leftovers_message(left.len(), longest));
            }
            // Waits up to the longest stop timeout: off the async threads.
            let recovery = tokio::task::spawn_blocking(move || recover(&run_dir))
                .await
                .map_err(|e| CliError::Failed(e.into()))?
                .map_err(|e| CliError::Failed(e.into()))?;
            // The killed berth's containers outlive their `run` clients: removed by label.
            let containers = berth_local::runtime::remove_left_containers(&stack, environment)
                .await
                .map_err(|e| CliError::Failed(e.into()))?;
            if containers > 0 && !cx.output.is_json() {
                cx.output.note(format!(
                    "removed {containers} container(s) a killed berth left"
                ));
            }
            if cx.output.is_json() {
                cx.output.json(&serde_json::json!({
                    "stopped": false,
                    "cleanedUp": recovery.stale_berth.is_some(),
                    "killedTasks": recovery.killed_tasks.len(),
                    "removedContainers": containers,
                }))?;
            } else if recovery.stale_berth.is_some() {
                report_recovery(cx, &recovery);
            } else if containers == 0 {
                cx.output.line("nothing is running");
            }
            Ok(())
        }
    }
}
