//! The GitHub Actions workflows `berth ci github` writes: one deploy workflow per service and
//! one pull-request workflow that posts `berth plan`. Pure: stack in, files out.
//!
//! Safer than the seed's pipeline by construction: credentials come from GitHub's OIDC
//! provider through a role (no access keys stored as secrets), every action is pinned to a
//! commit, permissions are the least each job needs, checkout keeps no token, and no `${{ }}`
//! expression is expanded inside a `run:` script (values reach scripts through `env:`).
//! The stack file's values were checked by berth-spec to hold no expression syntax.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use berth_spec::{GithubCi, Service, Stack};

/// Actions the workflows use, pinned to a commit (a tag can be moved; a commit cannot).
const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2";
const AWS_CREDENTIALS: &str =
    "aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502 # v4.0.2";

/// One file to write, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub path: PathBuf,
    pub contents: String,
}

/// Where the stack file sits in the repository: the workflows run berth from the root.
pub struct Placement<'a> {
    /// The stack file, relative to the repository root.
    pub stack_file: &'a Path,
    /// The repository root, absolute.
    pub repository_root: &'a Path,
    /// The directory the stack's relative paths (build contexts) are relative to, absolute.
    pub working_dir: &'a Path,
}

/// Every workflow for `services` (all of the stack's when empty), in a stable order.
pub fn workflows(
    stack: &Stack,
    ci: &GithubCi,
    place: &Placement<'_>,
    services: &[&Service],
) -> Vec<Workflow> {
    let services: Vec<&Service> = if services.is_empty() {
        stack.services.iter().collect()
    } else {
        services.to_vec()
    };
    let mut out: Vec<Workflow> = services
        .iter()
        .map(|service| Workflow {
            path: PathBuf::from(format!(".github/workflows/deploy-{}.yml", service.name)),
            contents: deploy(stack, ci, place, service),
        })
        .collect();
    out.push(Workflow {
        path: PathBuf::from(format!(".github/workflows/plan-{}.yml", ci.environment)),
        contents: plan(stack, ci, place),
    });
    out
}

/// The paths whose changes deploy `service`: the stack file's `[ci.github.paths]`, or the
/// service's build context; always the stack file itself.
fn trigger_paths(ci: &GithubCi, place: &Placement<'_>, service: &Service) -> Vec<String> {
    let mut paths = match ci.paths.get(&service.name) {
        Some(paths) => paths.clone(),
        None => match &service.build {
            Some(build) => match relative_to(
                &place.working_dir.join(&build.context),
                place.repository_root,
            ) {
                Some(dir) if dir.as_os_str().is_empty() => vec!["**".to_owned()],
                Some(dir) => vec![format!("{}/**", slashes(&dir))],
                None => vec!["**".to_owned()],
            },
            None => Vec::new(),
        },
    };
    let stack_file = slashes(place.stack_file);
    if !paths.contains(&stack_file) && !paths.iter().any(|p| p == "**") {
        paths.push(stack_file);
    }
    paths
}

/// `path` relative to `base`, lexically (`..` resolved), when it lies inside `base`.
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    let normal = |p: &Path| {
        let mut parts: Vec<Component<'_>> = Vec::new();
        for part in p.components() {
            match part {
                Component::ParentDir => {
                    parts.pop();
                }
                Component::CurDir => {}
                other => parts.push(other),
            }
        }
        parts.into_iter().collect::<PathBuf>()
    };
    normal(path)
        .strip_prefix(normal(base))
        .ok()
        .map(Path::to_path_buf)
}

fn slashes(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The account in role ARNs: the environment's `account_id`, else a repository variable
/// (an account id is not a secret, and a variable shows in logs as what it is).
fn account(stack: &Stack, ci: &GithubCi) -> String {
    stack
        .environment(&ci.environment)
        .and_then(|e| e.as_aws())
        .and_then(|aws| aws.account_id.clone())
        .unwrap_or_else(|| "${{ vars.AWS_ACCOUNT_ID }}".to_owned())
}

fn region(stack: &Stack, ci: &GithubCi) -> String {
    stack
        .environment(&ci.environment)
        .and_then(|e| e.as_aws())
        .map(|aws| aws.region.clone())
        .unwrap_or_default()
}

/// A YAML double-quoted scalar (the values are checked by berth-spec; quoting keeps `*`,
/// `:` and `#` literal).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `run: |` block, every line indented under its key.
fn block(script: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    script
        .lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn header(out: &mut String, place: &Placement<'_>) {
    let _ = writeln!(
        out,
        "# Generated by `berth ci github` from {}: edit the stack file and run it again\n\
         # rather than editing this file (`berth ci github --check` says when they differ).",
        slashes(place.stack_file)
    );
}

/// What every job continues with: berth's file and environment, then the steps every job
/// starts with: checkout without a stored token, the role through OIDC, berth itself.
fn common_steps(
    out: &mut String,
    stack: &Stack,
    ci: &GithubCi,
    place: &Placement<'_>,
    role: &str,
    session: &str,
) {
    let _ = write!(
        out,
        "    env:
      BERTH_FILE: {file}
      BERTH_ENV: {environment}
    steps:
      - name: Check out
        uses: {CHECKOUT}
        with:
          persist-credentials: false
      - name: AWS credentials (OIDC, no stored keys)
        uses: {AWS_CREDENTIALS}
        with:
          role-to-assume: arn:aws:iam::{account}:role/{role}
          role-session-name: {session}
          aws-region: {region}
      - name: Install berth
        run: |
{install}
",
        file = quoted(&slashes(place.stack_file)),
        environment = ci.environment,
        account = account(stack, ci),
        region = region(stack, ci),
        install = block(&ci.install, 10),
    );
}

fn deploy(stack: &Stack, ci: &GithubCi, place: &Placement<'_>, service: &Service) -> String {
    let mut out = String::new();
    header(&mut out, place);
    let paths: String = trigger_paths(ci, place, service)
        .iter()
        .map(|p| format!("      - {}\n", quoted(p)))
        .collect();
    let environment = &ci.environment;
    let name = &service.name;
    let _ = write!(
        out,
        "name: Deploy {name} to {environment}

on:
  push:
    branches:
      - {branch}
    paths:
{paths}  workflow_dispatch:

permissions: {{}}

# One deployment of a service to an environment at a time; a newer push waits rather than
# cancelling a rollout half way. (No `environment:` on the job: it would change the OIDC
# subject the deploy role trusts from the branch to the environment.)
concurrency:
  group: deploy-{name}-{environment}
  cancel-in-progress: false

jobs:
  deploy:
    name: Deploy {name}
    runs-on: {runs_on}
    timeout-minutes: 60
    permissions:
      contents: read # to check out the code
      id-token: write # the OIDC token the deploy role is assumed with
",
        branch = quoted(&ci.branch),
        runs_on = ci.runs_on,
    );
    common_steps(
        &mut out,
        stack,
        ci,
        place,
        &ci.deploy_role,
        &format!("deploy-{name}"),
    );
    let _ = write!(
        out,
        "      - name: Build and push the image (tagged with the commit)
        id: image
        run: |
          berth build {name} --push --output json > image.json
          echo \"uri=$(jq -r .image image.json)\" >> \"$GITHUB_OUTPUT\"
      - name: Deploy (waits for the rollout; fails when it fails or is rolled back)
        env:
          IMAGE: ${{{{ steps.image.outputs.uri }}}}
        run: |
          berth deploy {name} --image \"$IMAGE\" --output json > deployment.json
      - name: Summary
        if: always()
        env:
          IMAGE: ${{{{ steps.image.outputs.uri }}}}
        run: |
          {{
            echo \"### {name} → {environment}\"
            echo \"\"
            echo \"- image: \\`${{IMAGE:-not built}}\\`\"
            if [ -s deployment.json ]; then
              echo \"- revision: \\`$(jq -r .revision deployment.json)\\`\"
              echo \"- rollout: **$(jq -r .outcome deployment.json)** $(jq -r '.reason // \"\"' deployment.json)\"
            else
              echo \"- rollout: not started\"
            fi
          }} >> \"$GITHUB_STEP_SUMMARY\"
"
    );
    out
}

fn plan(stack: &Stack, ci: &GithubCi, place: &Placement<'_>) -> String {
    let mut out = String::new();
    header(&mut out, place);
    let environment = &ci.environment;
    let _ = write!(
        out,
        "name: Plan {environment}

on:
  pull_request:
    branches:
      - {branch}

permissions: {{}}

concurrency:
  group: plan-{environment}-${{{{ github.event.pull_request.number }}}}
  cancel-in-progress: true

jobs:
  plan:
    name: berth plan -e {environment}
    runs-on: {runs_on}
    timeout-minutes: 30
    permissions:
      contents: read # to check out the code
      id-token: write # the OIDC token the plan role is assumed with
      pull-requests: write # to post the plan as a comment
",
        branch = quoted(&ci.branch),
        runs_on = ci.runs_on,
    );
    common_steps(&mut out, stack, ci, place, &ci.plan_role, "plan");
    let _ = write!(
        out,
        "      - name: Plan
        run: |
          berth plan --output text > plan.txt
      - name: Post the plan on the pull request
        env:
          GH_TOKEN: ${{{{ github.token }}}}
          PR: ${{{{ github.event.pull_request.number }}}}
        run: |
          {{
            echo \"### berth plan -e {environment}\"
            echo \"\"
            echo '```'
            cat plan.txt
            echo '```'
          }} > comment.md
          cat comment.md >> \"$GITHUB_STEP_SUMMARY\"
          gh pr comment \"$PR\" --body-file comment.md --edit-last || gh pr comment \"$PR\" --body-file comment.md
"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_context_becomes_a_path_filter_relative_to_the_repository() {
        let root = Path::new("/repo");
        assert_eq!(
            relative_to(Path::new("/repo/examples/app/../../apps/api"), root),
            Some(PathBuf::from("apps/api"))
        );
        assert_eq!(relative_to(Path::new("/repo"), root), Some(PathBuf::new()));
        assert_eq!(relative_to(Path::new("/elsewhere/api"), root), None);
    }

    #[test]
    fn quoted_scalars_escape_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("apps/**"), "\"apps/**\"");
    }
}
