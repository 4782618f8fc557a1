//! `berth images [SERVICE]`: the images of the local registry.

use anyhow::Context as _;
use berth_local::engine::{Engine, EngineImage};
use berth_local::registry::{Image, Registry};
use berth_spec::Service;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::build::find_service;
use super::local_state::{self, human_size, short_digest};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Table;

/// List the images of the local registry and the container images berth built, newest first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service's repository.
    service: Option<String>,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let state = local_state::open(cx, &stack, "images")?;
    let registry = Registry::open(&state).context("cannot open the local registry")?;
    let services: Vec<&Service> = match &args.service {
        Some(name) => vec![find_service(&stack, name)?],
        None => stack.services.iter().collect(),
    };
    let mut rows: Vec<Row> = Vec::new();
    for service in &services {
        let listed = registry
            .list(&service.repository)
            .with_context(|| format!("cannot list repository {}", service.repository))?;
        rows.extend(
            listed
                .into_iter()
                .map(|image| Row::snapshot(service, image)),
        );
    }
    // The engine's store holds the services' container images: asked only when a service
    // has one, and an engine that is missing is no error here (there is nothing to list).
    if services.iter().any(|s| s.image.is_some()) {
        let engine = Engine::available()
            .await
            .map_err(|e| CliError::Failed(anyhow::Error::new(e)))?;
        if let Some(engine) = engine {
            for service in &services {
                let listed = engine
                    .images(&service.repository)
                    .await
                    .with_context(|| format!("cannot list the images of {}", service.repository))?;
                rows.extend(
                    listed
                        .into_iter()
                        .map(|image| Row::container(service, image)),
                );
            }
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.pushed_at));
    if cx.output.is_json() {
        cx.output.json(&rows)?;
        return Ok(());
    }
    if rows.is_empty() {
        cx.output
            .note("no images yet: `berth build` builds and pushes them");
        return Ok(());
    }
    let mut table = Table::new([
        "SERVICE",
        "KIND",
        "REPOSITORY",
        "TAGS",
        "DIGEST",
        "PUSHED (UTC)",
        "SIZE",
    ]);
    for row in &rows {
        table.row([
            row.service.clone(),
            row.kind.to_owned(),
            row.repository.clone(),
            row.tags.join(", "),
            short_digest(&row.digest).to_owned(),
            row.pushed_at.format("%Y-%m-%d %H:%M").to_string(),
            human_size(row.size),
        ]);
    }
    cx.output.table(&table);
    Ok(())
}

/// One image of either kind: a registry snapshot (what a process runs) or a container
/// image in the engine's store.
#[derive(Debug, Serialize)]
struct Row {
    service: String,
    /// `snapshot` or `container`.
    kind: &'static str,
    repository: String,
    tags: Vec<String>,
    /// The snapshot's content digest, or the image id.
    digest: String,
    pushed_at: DateTime<Utc>,
    size: u64,
    /// The snapshot's path (snapshots only).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

impl Row {
    fn snapshot(service: &Service, image: Image) -> Row {
        Row {
            service: service.name.clone(),
            kind: "snapshot",
            repository: image.repository,
            tags: image.tags,
            digest: image.digest,
            pushed_at: image.pushed_at,
            size: image.size,
            path: Some(image.path.display().to_string()),
        }
    }

    fn container(service: &Service, image: EngineImage) -> Row {
        Row {
            service: service.name.clone(),
            kind: "container",
            repository: image.repository,
            tags: image.tags,
            digest: image.id,
            pushed_at: image.created,
            size: image.size,
            path: None,
        }
    }
}
