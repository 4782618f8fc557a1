//! `berth build` of a service whose `build` names a Dockerfile: the container engine builds
//! it into its own store as `localhost/<repository>`, tagged with the git SHA and `latest`,
//! and the repository's keep-last-N lifecycle applies there.

use std::time::Instant;

use anyhow::Context as _;
use berth_local::engine::{Engine, ImageBuildRequest, iidfile};
use berth_local::registry::git_revision;
use berth_local::state_dir::StateDir;
use berth_spec::{ImageBuild, Service, Stack};
use serde::Serialize;

use super::build::{Progress, build_failed};
use super::local_state::{human_size, short_digest};
use crate::context::Context;
use crate::error::CliError;
use crate::output::Paint;

#[derive(Debug, Serialize)]
struct BuiltImage {
    service: String,
    engine: &'static str,
    repository: String,
    id: String,
    tags: Vec<String>,
    size: u64,
    log_file: String,
    seconds: f64,
    expired: Vec<String>,
}

pub(super) async fn build(
    cx: &Context,
    stack: &Stack,
    state: &StateDir,
    engine: &Engine,
    service: &Service,
    image: &ImageBuild,
) -> Result<serde_json::Value, CliError> {
    let revision = git_revision(&image.context);
    let tags: Vec<String> = revision.iter().map(|r| r.tag()).collect();
    let iid = iidfile(&state.registry(), &service.name);
    let request = ImageBuildRequest {
        build: image,
        repository: &service.repository,
        tags: &tags,
        iidfile: &iid,
    };
    let log_file = state.registry().join(format!("{}.build.log", service.name));
    let started = Instant::now();
    let shown = format!(
        "{} build -f {}",
        engine.kind.name(),
        image.dockerfile.display()
    );
    let progress = Progress::new(cx, &service.name, &shown);
    let id = engine
        .build(&request, log_file.clone(), |line| progress.line(line))
        .await;
    progress.finish();
    let id = id.map_err(|e| build_failed(&service.name, e))?;
    let keep_last = stack
        .registry(&service.name)
        .map_or(10, |r| r.keep_last as usize);
    let expired: Vec<String> = engine
        .apply_lifecycle(&service.repository, keep_last)
        .await
        .context("cannot apply the image lifecycle")?
        .into_iter()
        .map(|image| image.id)
        .collect();
    let images = engine
        .images(&service.repository)
        .await
        .context("cannot list the built image")?;
    let built = images
        .iter()
        .find(|i| i.id == id || id.ends_with(i.id.trim_start_matches("sha256:")));
    let seconds = started.elapsed().as_secs_f64();
    let out = BuiltImage {
        service: service.name.clone(),
        engine: engine.kind.name(),
        repository: berth_local::engine::local_name(&service.repository),
        tags: built.map(|b| b.tags.clone()).unwrap_or_default(),
        size: built.map_or(0, |b| b.size),
        id,
        log_file: log_file.display().to_string(),
        seconds,
        expired,
    };
    if !cx.output.is_json() {
        let style = cx.output.style();
        cx.output.line(format!(
            "{} built {} → {}@{}  tags {}  ({}, {}, {:.0}s)",
            style.paint(Paint::Green, "✓"),
            style.paint(Paint::Bold, &service.name),
            out.repository,
            short_digest(&out.id),
            out.tags.join(", "),
            out.engine,
            human_size(out.size),
            seconds
        ));
        if revision.is_none() {
            cx.output.note(format!(
                "  {} is not in a git repository: tagged latest only",
                image.context.display()
            ));
        }
        if !out.expired.is_empty() {
            cx.output.note(format!(
                "  lifecycle: removed {} image(s) beyond the last {keep_last}",
                out.expired.len()
            ));
        }
    }
    serde_json::to_value(&out).map_err(|e| CliError::Failed(e.into()))
}
