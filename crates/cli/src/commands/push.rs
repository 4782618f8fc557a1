//! `berth build SERVICE --push -e <aws env>`: the image built as `berth build` builds it,
//! tagged with the git commit, pushed to the service's ECR repository with a login from
//! ECR's API; prints the image's URI by digest, which `berth deploy --image` releases.

use anyhow::{Context as _, anyhow};
use berth_local::engine::{Engine, RegistryLogin, local_name};
use berth_local::params::SecretString;
use berth_local::registry::git_revision;
use berth_local::state_dir::StateDir;
use berth_spec::Image as SpecImage;
use serde::Serialize;

use super::aws::{connect, failed};
use super::build::find_service;
use super::build_image;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Paint;

/// Sends pushes to this registry (`host[:port]`) instead of the repository's own: for a
/// registry mirror, and for tests (moto emulates ECR's API, not its registry). The login
/// uses ECR's token all the same.
pub const REGISTRY_OVERRIDE: &str = "BERTH_ECR_REGISTRY_OVERRIDE";

#[derive(Debug, Serialize)]
struct Pushed {
    service: String,
    /// `<repository URI>@<digest>`: exactly what was pushed.
    image: String,
    repository: String,
    tag: String,
    digest: String,
    build: serde_json::Value,
}

/// The repository URI with its registry host replaced by `$BERTH_ECR_REGISTRY_OVERRIDE`.
fn overridden(uri: &str, registry: Option<&str>) -> Result<String, CliError> {
    let Some(registry) = registry.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(uri.to_owned());
    };
    if registry.contains('/') || registry.contains("://") {
        return Err(CliError::Usage(anyhow!(
            "{REGISTRY_OVERRIDE}={registry:?}: give a registry host (host or host:port), without a scheme or path"
        )));
    }
    let path = uri.split_once('/').map_or(uri, |(_, path)| path);
    Ok(format!("{registry}/{path}"))
}

pub async fn run(cx: &Context, name: &str) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_aws().is_none() {
        return Err(CliError::Usage(anyhow!(
            "`--push` pushes to the service's ECR repository in an AWS environment, and `{}` runs locally: name one with -e",
            environment.name
        )));
    }
    let service = find_service(&stack, name)?;
    let Some(SpecImage::Dockerfile(image)) = &service.image else {
        return Err(CliError::Usage(anyhow!(
            "service `{name}` is not built from a Dockerfile: `--push` pushes a container image"
        )));
    };
    let Some(revision) = git_revision(&image.context) else {
        return Err(CliError::Usage(anyhow!(
            "`--push` tags the image with the git commit, and {} is not in a git repository",
            image.context.display()
        )));
    };
    let tag = revision.tag();
    let engine = Engine::detect()
        .await
        .map_err(|e| CliError::Failed(anyhow::Error::new(e)))?;
    // Before the build: a missing repository or missing credentials fail at once.
    let aws = connect(environment).await?;
    let login = aws
        .registry_login(&stack, &service.name)
        .await
        .map_err(failed)?;
    let repository = overridden(
        &login.repository_uri,
        std::env::var(REGISTRY_OVERRIDE).ok().as_deref(),
    )?;
    let registry = repository
        .split_once('/')
        .map_or(repository.as_str(), |(host, _)| host)
        .to_owned();

    let state = StateDir::at(
        stack
            .environments
            .iter()
            .find_map(|e| e.as_local())
            .map_or_else(
                || stack.root.join(".berth"),
                |l| stack.root.join(&l.state_dir),
            ),
    );
    state
        .ensure()
        .with_context(|| format!("cannot prepare {}", state.root().display()))?;
    let build = build_image::build(cx, &stack, &state, &engine, service, image).await?;

    let local = format!("{}:{tag}", local_name(&service.repository));
    let remote = format!("{repository}:{tag}");
    let password = SecretString::new(login.expose_password());
    let digest = engine
        .push(
            &local,
            &remote,
            &RegistryLogin {
                registry: &registry,
                username: &login.username,
                password: &password,
            },
        )
        .await
        .map_err(|e| {
            CliError::Failed(anyhow::Error::new(e).context(format!("cannot push {remote}")))
        })?;
    let pushed = Pushed {
        service: service.name.clone(),
        image: format!("{repository}@{digest}"),
        repository,
        tag,
        digest,
        build,
    };
    if cx.output.is_json() {
        cx.output.json(&pushed)?;
    } else {
        let style = cx.output.style();
        cx.output.line(format!(
            "{} pushed {} → {}",
            style.paint(Paint::Green, "✓"),
            style.paint(Paint::Bold, &pushed.service),
            pushed.image
        ));
        cx.output
            .line(format!("  tag {}:{}", pushed.repository, pushed.tag));
        cx.output.line(format!(
            "  deploy it: berth deploy {} -e {} --image {}",
            pushed.service, environment.name, pushed.image
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_replaces_only_the_registry_host() {
        let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api";
        assert_eq!(overridden(uri, None).unwrap(), uri);
        assert_eq!(overridden(uri, Some("")).unwrap(), uri);
        assert_eq!(
            overridden(uri, Some("127.0.0.1:5000")).unwrap(),
            "127.0.0.1:5000/team/api"
        );
        assert!(overridden(uri, Some("http://127.0.0.1:5000")).is_err());
    }
}
