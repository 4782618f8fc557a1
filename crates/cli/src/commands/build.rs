//! `berth build [SERVICE]`: run the build command, snapshot the artifact into the local
//! registry, tag it with the git SHA and `latest`.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use berth_local::cleanup::RunState;
use berth_local::engine::{self, Artifact, Engine};
use berth_local::registry::{
    BuildCommand, BuildError, BuildOutput, BuildRequest, Image, Registry, check_artifact_kind,
    digests_in_use, git_revision, run_build,
};
use berth_local::state_dir::StateDir;
use berth_spec::{Image as SpecImage, Service, Stack};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::build_image;
use super::local_state::{self, human_size, short_digest};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Paint;

/// Build services and push their artifacts to the local registry.
///
/// A service whose `build` names a `dockerfile` is built as an image by the container
/// engine (podman or docker; `BERTH_CONTAINER_ENGINE` chooses), tagged
/// `localhost/<repository>:<git SHA>` and `latest`, when one is present.
/// Otherwise runs each service's `build.command` in its `build.context`, then snapshots
/// `build.artifact` into `.berth/registry/<repository>/<digest>`, tagged with the git
/// commit (`-dirty` for uncommitted changes) and `latest`. The whole build output is kept in
/// `.berth/registry/<service>.build.log`. Images beyond the repository's `keep_last` are
/// removed, except the ones the running berth's tasks use.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service to build; every service with a `build` when omitted.
    service: Option<String>,
    /// Push the service's image to its ECR repository in the AWS environment `-e` names,
    /// tagged with the git commit, and print its URI and digest (`berth deploy SERVICE
    /// --image URI` releases exactly that digest). The registry login uses a token from
    /// ECR's API; `BERTH_ECR_REGISTRY_OVERRIDE=host[:port]` sends the push to another
    /// registry (a mirror, or a test's).
    #[cfg(feature = "aws")]
    #[arg(long, requires = "service")]
    push: bool,
}

#[derive(Debug, Serialize)]
struct Built {
    service: String,
    #[serde(flatten)]
    image: Image,
    log_file: String,
    seconds: f64,
    expired: Vec<String>,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    #[cfg(feature = "aws")]
    if args.push {
        return super::push::run(cx, args.service.as_deref().unwrap_or_default()).await;
    }
    let stack = cx.load_stack()?;
    let state = local_state::open(cx, &stack, "build")?;
    let buildable =
        |s: &&Service| s.build.is_some() || matches!(s.image, Some(SpecImage::Dockerfile(_)));
    let services: Vec<&Service> = match &args.service {
        Some(name) => {
            let service = find_service(&stack, name)?;
            if !buildable(&service) {
                return Err(CliError::Usage(anyhow!(
                    "service `{name}` has no `build` in {}{}",
                    cx.file.display(),
                    match &service.image {
                        Some(SpecImage::Reference(r)) => format!(" (it runs the image {r})"),
                        _ => String::new(),
                    }
                )));
            }
            vec![service]
        }
        None => stack.services.iter().filter(buildable).collect(),
    };
    if services.is_empty() {
        return Err(CliError::Usage(anyhow!(
            "no service of {} has a `build`",
            cx.file.display()
        )));
    }
    let engine = if services.iter().any(|s| s.image.is_some()) {
        Engine::available()
            .await
            .map_err(|e| CliError::Failed(anyhow::Error::new(e)))?
    } else {
        None
    };
    let registry = Registry::open(&state).context("cannot open the local registry")?;
    let mut built = Vec::new();
    for service in services {
        built.push(match (engine::artifact(service, engine.is_some()), &engine) {
            (Some(Artifact::Image(SpecImage::Dockerfile(image))), Some(engine)) => {
                build_image::build(cx, &stack, &state, engine, service, image).await?
            }
            (Some(Artifact::Process(_)), _) => {
                if service.image.is_some() && !cx.output.is_json() {
                    cx.output.note(format!(
                        "{}: no container engine here, building its process artifact instead of its image",
                        service.name
                    ));
                }
                serde_json::to_value(build_one(cx, &stack, &state, &registry, service).await?)
                    .context("cannot render the build")?
            }
            _ => {
                return Err(CliError::Failed(anyhow::Error::new(
                    berth_local::engine::EngineError::NotFound,
                )
                .context(format!("service `{}` builds only an image", service.name))));
            }
        });
    }
    if cx.output.is_json() {
        cx.output.json(&built)?;
    }
    Ok(())
}

/// The service `name`, or a usage error listing the services.
pub fn find_service<'s>(stack: &'s Stack, name: &str) -> Result<&'s Service, CliError> {
    stack.service(name).ok_or_else(|| {
        let names: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
        CliError::Usage(anyhow!(
            "no service `{name}` in the stack (services: {})",
            names.join(", ")
        ))
    })
}

async fn build_one(
    cx: &Context,
    stack: &Stack,
    state: &StateDir,
    registry: &Registry,
    service: &Service,
) -> Result<Built, CliError> {
    let Some(build) = &service.build else {
        return Err(CliError::Usage(anyhow!(
            "service `{}` has no build",
            service.name
        )));
    };
    let request = BuildRequest {
        command: BuildCommand::Shell(build.command.clone()),
        context: build.context.clone(),
        artifact: build.artifact.clone(),
        log_file: state.registry().join(format!("{}.build.log", service.name)),
    };
    let started = Instant::now();
    let progress = Progress::new(cx, &service.name, &build.command);
    let result = run_build(&request, |line| progress.line(line)).await;
    progress.finish();
    let result = result
        .and_then(|result| check_artifact_kind(build, &result.artifact).map(|()| result))
        .map_err(|e| build_failed(&service.name, e))?;

    let revision = git_revision(&build.context);
    let tags: Vec<String> = revision.iter().map(|r| r.tag()).collect();
    let repository = stack.registry(&service.name);
    let immutable = repository.is_some_and(|r| r.immutable_tags);
    let image = registry
        .push_with_mutability(&service.repository, &result.artifact, &tags, immutable)
        .with_context(|| format!("cannot push the build of {}", service.name))?;

    let mut expired = Vec::new();
    let keep_last = repository.map_or(10, |r| r.keep_last as usize);
    if let Some(in_use) = images_in_use(state) {
        expired = registry
            .apply_lifecycle(&service.repository, keep_last, &in_use)
            .context("cannot apply the registry lifecycle")?
            .into_iter()
            .map(|image| image.digest)
            .collect();
    }

    let seconds = started.elapsed().as_secs_f64();
    if !cx.output.is_json() {
        let style = cx.output.style();
        cx.output.line(format!(
            "{} built {} → {}@{}  tags {}  ({}, {:.0}s)",
            style.paint(Paint::Green, "✓"),
            style.paint(Paint::Bold, &service.name),
            service.repository,
            short_digest(&image.digest),
            image.tags.join(", "),
            human_size(image.size),
            seconds
        ));
        if revision.is_none() {
            cx.output.note(format!(
                "  {} is not in a git repository: tagged latest only",
                build.context.display()
            ));
        }
        if !expired.is_empty() {
            cx.output.note(format!(
                "  lifecycle: removed {} image(s) beyond the last {keep_last}",
                expired.len()
            ));
        }
    }
    Ok(Built {
        service: service.name.clone(),
        image,
        log_file: result.log_file.display().to_string(),
        seconds,
        expired,
    })
}

/// A failed build as the CLI reports it: the command, its status and its last lines.
pub(super) fn build_failed(service: &str, error: BuildError) -> CliError {
    match error {
        BuildError::Failed {
            command,
            status,
            log_file,
            tail,
        } => {
            let mut message =
                format!("building {service} failed: `{command}` exited with {status}");
            if !tail.is_empty() {
                message.push_str("; its last lines:\n");
                for line in &tail {
                    message.push_str(&format!("    {line}\n"));
                }
            }
            message.push_str(&format!("  full log: {}", log_file.display()));
            CliError::Failed(anyhow!(message))
        }
        e => CliError::Failed(anyhow::Error::new(e).context(format!("cannot build {service}"))),
    }
}

/// The digests the running berth's tasks use (none when berth is not running), or `None`
/// when that cannot be known: then the lifecycle waits for another build.
fn images_in_use(state: &StateDir) -> Option<HashSet<String>> {
    match RunState::read(&state.run()) {
        Ok(None) => Some(HashSet::new()),
        Ok(Some(run)) => digests_in_use(run.tasks.iter().map(|t| t.pid)),
        Err(_) => None,
    }
}

/// A spinner with the last output line on a terminal; plain prefixed lines on stderr
/// otherwise (CI logs keep the whole build); nothing with `--output json`.
pub(super) enum Progress {
    Spinner(ProgressBar),
    Lines(String),
    Quiet,
}

impl Progress {
    pub(super) fn new(cx: &Context, service: &str, command: &str) -> Progress {
        if cx.output.is_json() {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            cx.output.note(format!("building {service}: {command}"));
            return Progress::Lines(service.to_owned());
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(format!("building {service}"));
        bar.set_message(command.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress::Spinner(bar)
    }

    pub(super) fn line(&self, output: &BuildOutput) {
        match self {
            Progress::Spinner(bar) => bar.set_message(output.line().trim().to_owned()),
            Progress::Lines(service) => eprintln!("  {service} | {}", output.line()),
            Progress::Quiet => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Progress::Spinner(bar) = self {
            bar.finish_and_clear();
        }
    }
}
