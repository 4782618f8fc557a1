//! `berth scale SERVICE N`: change a service's desired count on the running stack; on an AWS
//! environment, through the AWS engine (`commands::aws_ops::scale`).

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
    // An unknown service is the caller's mistake (exit 2), said before connecting.
    let service = find_service(cx, &stack, &args.service)?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        return crate::commands::aws_ops::scale(cx, &stack, environment, &args).await;
    }
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
