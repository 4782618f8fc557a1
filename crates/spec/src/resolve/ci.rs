//! `[ci.github]`: the workflows `berth ci github` writes and the roles they assume.
//!
//! Every value here ends up in a workflow file: the checks keep GitHub's expression syntax
//! (`${{`) out of it, so nothing from the stack file can inject code into a workflow.

use std::collections::BTreeMap;

use crate::model::{Environment, GithubCi, Runtime};
use toml::de::DeValue;

use crate::reader::{Problems, Sp, Table, type_name};

use super::ServiceSpans;
use super::iam::role_name;

pub(crate) fn ci(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
    environments: &[Environment],
    services: &[ServiceSpans],
) -> Option<GithubCi> {
    let mut ci = top.table(problems, "ci")?;
    let github = ci.table(problems, "github");
    ci.finish(problems);
    let mut t = github?;

    let repository = t.text(problems, "repository");
    if let Some(repo) = &repository
        && let Some(why) = repository_problem(&repo.value)
    {
        problems.at(
            "berth::bad_value",
            repo.span.clone(),
            format!("invalid GitHub repository: {why}"),
            "expected owner/name",
        );
    }
    let branch = match t.text(problems, "branch") {
        Some(branch) => {
            if let Some(why) = branch_problem(&branch.value) {
                problems.at(
                    "berth::bad_value",
                    branch.span.clone(),
                    format!("invalid branch name: {why}"),
                    "invalid branch",
                );
            }
            branch.value
        }
        None => "main".to_owned(),
    };
    let environment = environment(&mut t, problems, environments);
    let deploy_role = t.text(problems, "deploy_role");
    if let Some(role) = &deploy_role {
        role_name(problems, role);
    }
    let plan_role = t.text(problems, "plan_role");
    if let Some(role) = &plan_role {
        role_name(problems, role);
    }
    let install = t.text(problems, "install");
    match &install {
        Some(install) => no_expression(problems, install, "`ci.github.install`"),
        None => {
            if !t.mentions("install") {
                problems.push(
                    crate::diagnostics::Problem::new(
                        "berth::missing_key",
                        "`ci.github` needs `install`: how the runner gets berth",
                    )
                    .label(t.span.clone(), "no `install`")
                    .help(
                        "a command that puts berth, built with the `aws` feature, on the PATH, \
                         e.g. install = \"cargo install --locked --git <berth's repository> \
                         berth-cli --features aws\"",
                    ),
                );
            }
        }
    }
    let runs_on = match t.text(problems, "runs_on") {
        Some(label) => {
            if label
                .value
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            {
                problems.at(
                    "berth::bad_value",
                    label.span.clone(),
                    "a runner label has only letters, digits and - _ .",
                    "invalid label",
                );
            }
            label.value
        }
        None => "ubuntu-24.04".to_owned(),
    };
    let paths = paths(&mut t, problems, services);
    t.finish(problems);

    Some(GithubCi {
        repository: repository.map(|r| r.value),
        branch,
        environment: environment?,
        deploy_role: deploy_role.map_or_else(|| format!("{stack}-github-deploy"), |r| r.value),
        plan_role: plan_role.map_or_else(|| format!("{stack}-github-plan"), |r| r.value),
        install: install?.value,
        runs_on,
        paths,
    })
}

/// The AWS environment the workflows deploy to: the one named, or the only one there is.
fn environment(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    environments: &[Environment],
) -> Option<String> {
    let aws: Vec<&str> = environments
        .iter()
        .filter(|e| e.runtime() == Runtime::Aws)
        .map(|e| e.name.as_str())
        .collect();
    if let Some(name) = t.text(problems, "environment") {
        if aws.contains(&name.value.as_str()) {
            return Some(name.value);
        }
        let why = if environments.iter().any(|e| e.name == name.value) {
            format!(
                "`{}` runs locally: CI deploys to an AWS environment",
                name.value
            )
        } else {
            format!("there is no environment `{}`", name.value)
        };
        problems.at(
            "berth::bad_reference",
            name.span,
            why,
            "not an AWS environment",
        );
        return None;
    }
    match aws.as_slice() {
        [only] => Some((*only).to_owned()),
        [] => {
            problems.push(
                crate::diagnostics::Problem::new(
                    "berth::missing_key",
                    "`ci.github` deploys to an AWS environment, and the stack has none",
                )
                .label(t.span.clone(), "deploys nowhere")
                .help("add [environments.production] with runtime = \"aws\" and a region"),
            );
            None
        }
        several => {
            problems.push(
                crate::diagnostics::Problem::new(
                    "berth::missing_key",
                    "`ci.github` needs `environment`: the stack has several AWS environments",
                )
                .label(t.span.clone(), "which one?")
                .help(format!("one of: {}", several.join(", "))),
            );
            None
        }
    }
}

/// `[ci.github.paths]`: service → the paths whose changes deploy it.
fn paths(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    services: &[ServiceSpans],
) -> BTreeMap<String, Vec<String>> {
    let mut paths = BTreeMap::new();
    let Some(table) = t.table(problems, "paths") else {
        return paths;
    };
    for (service, node) in table.entries() {
        if !services.iter().any(|s| s.service.name == service.value) {
            problems.at(
                "berth::unknown_service",
                service.span.clone(),
                format!("`{}` is not a service", service.value),
                "unknown service",
            );
            continue;
        }
        let DeValue::Array(items) = node.get_ref() else {
            problems.at(
                "berth::wrong_type",
                node.span(),
                format!(
                    "`ci.github.paths.{}` must be an array of paths, not {}",
                    service.value,
                    type_name(node.get_ref())
                ),
                "expected an array",
            );
            continue;
        };
        let mut list = Vec::new();
        for item in items.iter() {
            let DeValue::String(path) = item.get_ref() else {
                problems.at(
                    "berth::wrong_type",
                    item.span(),
                    format!("`ci.github.paths.{}` must hold strings", service.value),
                    "expected a string",
                );
                continue;
            };
            let path = Sp::new(path.to_string(), item.span());
            if let Some(why) = path_filter_problem(&path.value) {
                problems.at(
                    "berth::bad_value",
                    path.span.clone(),
                    why,
                    "invalid path filter",
                );
            }
            no_expression(problems, &path, "a path filter");
            list.push(path.value);
        }
        paths.insert(service.value.to_owned(), list);
    }
    paths
}

/// GitHub's `owner/name`: an owner of letters, digits and single hyphens (≤ 39), a name of
/// letters, digits, `.`, `_`, `-` (≤ 100).
fn repository_problem(repo: &str) -> Option<String> {
    let Some((owner, name)) = repo.split_once('/') else {
        return Some(format!("`{repo}` is not owner/name"));
    };
    if owner.is_empty()
        || owner.len() > 39
        || owner.starts_with('-')
        || owner.ends_with('-')
        || !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Some(format!(
            "the owner `{owner}` has 1 to 39 letters, digits and inner hyphens"
        ));
    }
    if name.is_empty()
        || name.len() > 100
        || name == "."
        || name == ".."
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Some(format!(
            "the name `{name}` has 1 to 100 letters, digits and . _ -"
        ));
    }
    None
}

/// A branch name as git accepts it (git check-ref-format), restricted to what needs no
/// quoting in a workflow.
fn branch_problem(branch: &str) -> Option<String> {
    if branch.starts_with(['-', '/', '.']) || branch.ends_with(['/', '.']) {
        return Some("cannot start with - / . or end with / .".into());
    }
    if branch.contains("..") || branch.contains("//") || branch.ends_with(".lock") {
        return Some("cannot contain `..` or `//`, or end with `.lock`".into());
    }
    branch
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_./".contains(*c)))
        .map(|c| format!("`{c}` is not allowed (letters, digits and - _ . /)"))
}

/// A path filter of `on.push.paths`: relative to the repository root.
fn path_filter_problem(path: &str) -> Option<String> {
    if path.trim().is_empty() {
        return Some("a path filter cannot be empty".into());
    }
    if path.starts_with('/') {
        return Some(format!(
            "`{path}` is absolute: path filters are relative to the repository root"
        ));
    }
    if path.contains(['\n', '"']) {
        return Some("a path filter cannot contain a newline or `\"`".into());
    }
    None
}

/// GitHub evaluates `${{ … }}` anywhere in a workflow, `run:` scripts included: a value
/// carrying one would run as an expression.
fn no_expression(problems: &mut Problems, value: &Sp<String>, what: &str) {
    if value.value.contains("${{") {
        problems.at(
            "berth::bad_value",
            value.span.clone(),
            format!("{what} cannot contain `${{{{`: GitHub would evaluate it as an expression"),
            "expression syntax",
        );
    }
}
