//! `berth scale SERVICE N`: change a service's desired count on the running stack.

use berth_local::control::{Request, Response};

use crate::commands::running::{connect, find_service, local_run_dir};
use crate::context::Context;
use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (its key in the stack file, like `backend`, or its ECS name).
    pub service: String,
    /// The new desired count.
    pub count: u32,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let service = find_service(cx, &stack, &args.service)?;
    let run_dir = local_run_dir(cx, &stack)?;
    let mut client = connect(&run_dir).await?;
    let request = Request::Scale {
        service: service.service_name.clone(),
        count: args.count,
    };
    match client
        .request(&request)
        .await
        .map_err(|e| CliError::Failed(e.into()))?
    {
        Response::Scaled { service, count } => {
            if cx.output.is_json() {
                cx.output
                    .json(&serde_json::json!({ "service": service, "desiredCount": count }))?;
            } else {
                cx.output.line(format!("{service}: desired count {count}"));
            }
            Ok(())
        }
        Response::Error { message } => Err(CliError::Usage(anyhow::anyhow!(message))),
        other => Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the scale request with {other:?}"
        ))),
    }
}
