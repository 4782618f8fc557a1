//! `berth deploy SERVICE`: register a new revision from the stack file as it is now (built,
//! or `--image TAG` from the registry) and roll it out on the running stack; on an AWS
//! environment, through the AWS engine (`commands::aws::deploy`).

use berth_local::control::{Request, Response};

use crate::commands::rollout::follow;
use crate::commands::running::RunningService;
use crate::context::Context;
use crate::error::{CliError, CliResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (its key in the stack file, like `backend`, or its ECS name).
    pub service: String,
    /// Deploy this tag of the service's repository in the local registry instead of
    /// building.
    /// On an AWS environment: a tag of the service's ECR repository or a full image URI
    /// (default: the repository's newest image).
    #[arg(long, value_name = "TAG")]
    pub image: Option<String>,
    /// Deploy with this strategy once, instead of the stack file's (its parameters when the
    /// file names the same strategy, ECS's defaults otherwise).
    #[arg(long, value_parser = ["rolling", "blue_green", "canary", "linear"])]
    pub strategy: Option<String>,
    /// On an AWS environment: return once the service is updated, without watching the
    /// rollout.
    #[cfg(feature = "aws")]
    #[arg(long)]
    pub no_watch: bool,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    // The file is checked here, so its problems are shown as diagnostics (exit 2).
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        return crate::commands::aws::deploy(cx, &stack, environment, args).await;
    }
    #[cfg(feature = "aws")]
    if args.no_watch {
        return Err(CliError::Usage(anyhow::anyhow!(
            "--no-watch is for AWS environments: a local deploy is followed to its end"
        )));
    }
    let mut running = RunningService::connect_in(cx, &stack, &args.service).await?;
    let service = &running.service;
    let stack_file = std::path::absolute(&cx.file).map_err(|e| {
        CliError::Usage(
            anyhow::Error::new(e).context(format!("cannot resolve {}", cx.file.display())),
        )
    })?;
    if !cx.output.is_json() {
        let what = match (&args.image, &service.build) {
            (Some(tag), _) => format!("image tag {tag}"),
            (None, Some(build)) => format!("a build with `{}`", build.command),
            (None, None) => "the registry's latest image".to_owned(),
        };
        cx.output.line(format!(
            "{}: registering a new revision from {what}",
            service.name
        ));
    }
    let request = Request::Deploy {
        service: service.service_name.clone(),
        stack_file,
        image: args.image,
        strategy: args.strategy,
    };
    match running.request(&request).await? {
        Response::Deploying(started) => follow(cx, &mut running.client, started).await,
        Response::Error { message } => Err(CliError::Failed(anyhow::anyhow!(message))),
        other => Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the deploy request with {other:?}"
        ))),
    }
}
