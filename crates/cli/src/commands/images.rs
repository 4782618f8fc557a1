//! `berth images [SERVICE]`: the images of the local registry.

use anyhow::Context as _;
use berth_local::registry::{Image, Registry};
use berth_spec::Service;

use super::build::find_service;
use super::local_state::{self, human_size, short_digest};
use crate::context::Context;
use crate::error::CliResult;
use crate::output::Table;

/// List the images of the local registry, newest first.
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
    let mut images: Vec<(String, Image)> = Vec::new();
    for service in services {
        let listed = registry
            .list(&service.repository)
            .with_context(|| format!("cannot list repository {}", service.repository))?;
        images.extend(listed.into_iter().map(|i| (service.name.clone(), i)));
    }
    if cx.output.is_json() {
        let rows: Vec<serde_json::Value> = images
            .iter()
            .map(|(service, image)| {
                let mut value = serde_json::to_value(image).unwrap_or_default();
                value["service"] = serde_json::Value::String(service.clone());
                value
            })
            .collect();
        cx.output.json(&rows)?;
        return Ok(());
    }
    if images.is_empty() {
        cx.output
            .note("no images yet: `berth build` builds and pushes them");
        return Ok(());
    }
    let mut table = Table::new([
        "SERVICE",
        "REPOSITORY",
        "TAGS",
        "DIGEST",
        "PUSHED (UTC)",
        "SIZE",
    ]);
    for (service, image) in &images {
        table.row([
            service.clone(),
            image.repository.clone(),
            image.tags.join(", "),
            short_digest(&image.digest).to_owned(),
            image.pushed_at.format("%Y-%m-%d %H:%M").to_string(),
            human_size(image.size),
        ]);
    }
    cx.output.table(&table);
    Ok(())
}
