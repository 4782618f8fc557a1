//! `berth ci github`: write (or check) the GitHub Actions workflows of `[ci.github]`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use berth_spec::Service;

use super::build::find_service;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::github_workflows::{self, Placement, Workflow};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    provider: Provider,
}

#[derive(Debug, clap::Subcommand)]
enum Provider {
    /// Write .github/workflows/deploy-<service>.yml for each service and a pull-request
    /// workflow that posts `berth plan`, from the stack file's `[ci.github]`.
    Github(GithubArgs),
}

#[derive(Debug, clap::Args)]
struct GithubArgs {
    /// Only these services (default: every service).
    services: Vec<String>,
    /// Write nothing; exit 1 when a workflow on disk differs from what would be written.
    #[arg(long)]
    check: bool,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let Provider::Github(args) = args.provider;
    let stack = cx.load_stack()?;
    let Some(ci) = &stack.ci else {
        return Err(CliError::Usage(anyhow!(
            "{} has no [ci.github] section: add one with the repository allowed to deploy \
             (repository = \"owner/name\") and how the runner installs berth (install = \"…\")",
            cx.file.display()
        )));
    };
    let services: Vec<&Service> = args
        .services
        .iter()
        .map(|name| find_service(&stack, name))
        .collect::<Result<_, _>>()?;
    let repository_root = repository_root(&stack.root)?;
    let stack_file = std::fs::canonicalize(&cx.file)
        .with_context(|| format!("cannot resolve {}", cx.file.display()))?;
    let stack_file = stack_file
        .strip_prefix(&repository_root)
        .map_err(|_| {
            CliError::Usage(anyhow!(
                "{} is outside the git repository at {}",
                cx.file.display(),
                repository_root.display()
            ))
        })?
        .to_path_buf();
    let working_dir = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .context("cannot read the current directory")?;
    let place = Placement {
        stack_file: &stack_file,
        repository_root: &repository_root,
        working_dir: &working_dir,
    };
    let workflows = github_workflows::workflows(&stack, ci, &place, &services);
    if args.check {
        return check(cx, &repository_root, &workflows);
    }
    for workflow in &workflows {
        let path = repository_root.join(&workflow.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &workflow.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    report(cx, &workflows, "wrote")
}

/// Compares each workflow with the file on disk; any difference is exit 1.
fn check(cx: &Context, root: &Path, workflows: &[Workflow]) -> CliResult {
    let stale: Vec<&Workflow> = workflows
        .iter()
        .filter(|w| {
            std::fs::read_to_string(root.join(&w.path)).ok().as_deref() != Some(&w.contents)
        })
        .collect();
    if stale.is_empty() {
        return report(cx, workflows, "up to date");
    }
    let names: Vec<String> = stale.iter().map(|w| w.path.display().to_string()).collect();
    Err(CliError::Failed(anyhow!(
        "{} from what `berth ci github` writes: {}; run `berth ci github` and commit the result",
        if names.len() == 1 {
            "one workflow"
        } else {
            "workflows"
        },
        names.join(", ")
    )))
}

fn report(cx: &Context, workflows: &[Workflow], verb: &str) -> CliResult {
    if cx.output.is_json() {
        let files: Vec<String> = workflows
            .iter()
            .map(|w| w.path.display().to_string())
            .collect();
        cx.output
            .json(&serde_json::json!({ "status": verb, "workflows": files }))?;
    } else {
        for workflow in workflows {
            cx.output
                .line(format!("{verb} {}", workflow.path.display()));
        }
    }
    Ok(())
}

/// The root of the git work tree holding the stack file.
fn repository_root(dir: &Path) -> CliResult<PathBuf> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(dir)
        .output()
        .context(
            "cannot run git (workflows are written into the repository's .github/workflows)",
        )?;
    if !output.status.success() {
        return Err(CliError::Usage(anyhow!(
            "{} is not inside a git repository: GitHub workflows live in a repository's \
             .github/workflows (run `git init` first)",
            dir.display()
        )));
    }
    let root = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(std::fs::canonicalize(&root).with_context(|| format!("cannot resolve {root}"))?)
}
