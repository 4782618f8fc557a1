//! The spanned document → the resolved [`Stack`], every default applied, every problem kept.
//!
//! Each section is read by its own module; cross-section checks (routes, references,
//! secrets) run in [`checks`] once every section is read, so one run reports everything.

mod autoscaling;
mod checks;
mod ci;
mod database;
pub(crate) mod deployment;
mod environments;
mod health;
mod iam;
mod load_balancer;
mod network;
mod parameters;
mod registries;
mod security_groups;
mod services;

use std::path::Path;

use toml::de::DeTable;

use crate::model::Stack;
use crate::reader::{Problems, Sp, Table};
use crate::rules;

pub(crate) use parameters::ParameterSpans;
pub(crate) use services::ServiceSpans;

/// What the resolver read, with spans for the cross-section checks.
pub(crate) struct Read {
    pub stack: Stack,
    pub services: Vec<ServiceSpans>,
    pub parameters: Vec<ParameterSpans>,
    pub database_parameters: Vec<Sp<String>>,
}

/// Reads the document; the stack is only meaningful when `problems` stays empty.
pub(crate) fn resolve(
    text: &str,
    doc: &DeTable<'_>,
    doc_span: std::ops::Range<usize>,
    root: &Path,
    problems: &mut Problems,
) -> Stack {
    let mut top = Table::new(doc, doc_span.clone(), "");
    let (name, cluster) = stack_section(&mut top, problems, doc_span);
    let environments = environments::read(&mut top, problems);
    let network = network::network(&mut top, problems, &name);
    let (load_balancer, default_service) = load_balancer::load_balancer(&mut top, problems, &name);
    let registry_defaults = registries::registry_defaults(&mut top, problems);
    let (database, database_parameters) = database::database(&mut top, problems, &name);
    let mut services = services::read(&mut top, problems, root);
    let parameters = parameters::read(text, &mut top, problems, database.as_ref());
    let iam = iam::iam(&mut top, problems, &name, &services, &parameters);
    let security_groups =
        security_groups::security_groups(&mut top, problems, &name, &services, database.as_ref());
    let ci = ci::ci(&mut top, problems, &name, &environments, &services);
    top.finish(problems);
    checks::default_service(&mut services, default_service.as_ref(), problems);

    let registries = services
        .iter()
        .map(|s| crate::model::Registry {
            name: s.service.repository.clone(),
            service: s.service.name.clone(),
            scan_on_push: registry_defaults.scan_on_push,
            immutable_tags: registry_defaults.immutable_tags,
            keep_last: registry_defaults.keep_last,
        })
        .collect();

    let read = Read {
        stack: Stack {
            name,
            cluster,
            root: root.to_path_buf(),
            environments,
            network,
            security_groups,
            iam,
            registries,
            database,
            load_balancer,
            services: services.iter().map(|s| s.service.clone()).collect(),
            parameters: parameters.iter().map(|p| p.parameter.clone()).collect(),
            ci,
        },
        services,
        parameters,
        database_parameters,
    };
    checks::run(&read, problems);
    read.stack
}

/// `[stack]`: the name every derived resource name starts with.
fn stack_section(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    doc_span: std::ops::Range<usize>,
) -> (String, String) {
    let Some(mut table) = top.table(problems, "stack") else {
        if !top.mentions("stack") {
            problems.push(
                crate::diagnostics::Problem::new(
                    "berth::missing_key",
                    "the stack file has no `[stack]` table",
                )
                .label(doc_span.start..doc_span.start, "add it here")
                .help("start the file with\n[stack]\nname = \"my-app\""),
            );
        }
        return ("berth".into(), "berth-cluster".into());
    };
    let name = match table.text(problems, "name") {
        Some(name) => {
            if let Some(why) = rules::dns_label_problem(&name.value, 24) {
                problems.at(
                    "berth::bad_name",
                    name.span.clone(),
                    format!("invalid stack name: {why}"),
                    "invalid name",
                );
            } else if !name.value.starts_with(|c: char| c.is_ascii_lowercase())
                || name.value.chars().any(|c| c.is_ascii_uppercase())
            {
                problems.at(
                    "berth::bad_name",
                    name.span.clone(),
                    "a stack name is lowercase and starts with a letter",
                    "invalid name",
                );
            }
            name.value
        }
        None => {
            if !table.mentions("name") {
                problems.at(
                    "berth::missing_key",
                    table.span.clone(),
                    "`stack.name` is required",
                    "this table needs `name`",
                );
            }
            "berth".into()
        }
    };
    let cluster = match table.text(problems, "cluster") {
        Some(cluster) => {
            if let Some(why) = cluster_name_problem(&cluster.value) {
                problems.at(
                    "berth::bad_name",
                    cluster.span,
                    format!("invalid cluster name: {why}"),
                    "invalid name",
                );
            }
            cluster.value
        }
        None => format!("{name}-cluster"),
    };
    table.finish(problems);
    (name, cluster)
}

fn cluster_name_problem(name: &str) -> Option<String> {
    if name.len() > 255 {
        return Some("has at most 255 characters".into());
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        .map(|c| format!("cannot contain `{c}` (only letters, digits, `-`, `_`)"))
}
