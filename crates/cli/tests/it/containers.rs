//! `berth build` and `berth images` with a real container engine (podman here; CI runs
//! `scripts/container-setup` first), and the engine's errors without one.

use std::path::Path;
use std::process::{Command, Output};

use crate::{assert_stalled, git, text, up_detached};
use berth_testkit::{ImageCleanup, container_engine};

fn berth(dir: &Path, args: &[&str], engine: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .env_remove("BERTH_FILE")
        .env_remove("BERTH_ENV");
    match engine {
        Some(engine) => command.env("BERTH_CONTAINER_ENGINE", engine),
        None => command.env_remove("BERTH_CONTAINER_ENGINE"),
    };
    command.output().expect("berth runs")
}

/// A git repository with a stack whose `web` has both a process build and a Dockerfile,
/// and whose `worker` only has a process build. `repository` is unique per test.
fn stack(repository: &str, dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let stack = format!(
        r#"
[stack]
name = "demo"

[load_balancer]
default_service = "web"

[registries]
keep_last = 1

[services.web]
port = 8080
repository = "{repository}"
build = {{ context = ".", command = "printf web > web.bin", artifact = "web.bin", dockerfile = "Dockerfile", args = {{ GREETING = "hello" }} }}

[services.worker]
port = 8081
routes = [{{ path = "/w/*", priority = 1 }}]
build = {{ context = ".", command = "printf worker > worker.bin", artifact = "worker.bin" }}
"#
    );
    std::fs::write(dir.path().join("berth.toml"), stack).unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.path().join(".gitignore"), ".berth\n*.bin\n").unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "one"]);
    dir
}

fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

const DOCKERFILE: &str = "FROM docker.io/library/debian:bookworm-slim\n\
                          ARG GREETING\n\
                          RUN echo \"$GREETING\" > /greeting\n";

#[test]
fn build_makes_images_tagged_by_commit_and_images_lists_both_kinds() {
    let Some(engine) = container_engine() else {
        return;
    };
    let repository = format!("berth-test/build-{}", std::process::id());
    let _cleanup = ImageCleanup {
        engine: engine.clone(),
        repository: repository.clone(),
    };
    let dir = stack(&repository, DOCKERFILE);
    let engine_name = engine.to_str().unwrap();

    let out = berth(dir.path(), &["build"], Some(engine_name));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = head(dir.path());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("localhost/{repository}")) && stdout.contains(&first),
        "{stdout}"
    );
    // The build argument reached the Dockerfile.
    let greeting = Command::new(&engine)
        .args(["run", "--rm", &format!("localhost/{repository}:{first}")])
        .args(["cat", "/greeting"])
        .output()
        .unwrap();
    assert_eq!(text(&greeting.stdout).trim(), "hello");

    let out = berth(
        dir.path(),
        &["images", "--output", "json"],
        Some(engine_name),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["service"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("web", "container")), "{kinds:?}");
    assert!(kinds.contains(&("worker", "snapshot")), "{kinds:?}");
    assert!(
        !kinds.contains(&("web", "snapshot")),
        "the engine builds web's image: {kinds:?}"
    );
    let web = rows.iter().find(|r| r["kind"] == "container").unwrap();
    let mut tags: Vec<&str> = web["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, [first.as_str(), "latest"]);

    // A second commit with other content: keep_last = 1 removes the first image.
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("{DOCKERFILE}RUN echo two > /two\n"),
    )
    .unwrap();
    git(dir.path(), &["commit", "-qam", "two"]);
    let out = berth(
        dir.path(),
        &["build", "web", "--output", "json"],
        Some(engine_name),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let built: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        built[0]["expired"].as_array().unwrap().len(),
        1,
        "{built:?}"
    );
    let listed = Command::new(&engine)
        .args([
            "images",
            "--format",
            "{{.Tag}}",
            &format!("localhost/{repository}"),
        ])
        .output()
        .unwrap();
    let mut left: Vec<String> = text(&listed.stdout).lines().map(str::to_owned).collect();
    left.sort_unstable();
    assert_eq!(left, [head(dir.path()), "latest".to_owned()]);
}

#[test]
fn a_dockerfile_that_fails_is_a_clear_error_with_its_last_lines() {
    let Some(engine) = container_engine() else {
        return;
    };
    let repository = format!("berth-test/fails-{}", std::process::id());
    let _cleanup = ImageCleanup {
        engine: engine.clone(),
        repository: repository.clone(),
    };
    let dir = stack(
        &repository,
        "FROM docker.io/library/debian:bookworm-slim\nRUN echo the-step-that-fails && false\n",
    );
    let out = berth(dir.path(), &["build", "web"], engine.to_str());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("building web failed"), "{stderr}");
    assert!(stderr.contains("the-step-that-fails"), "{stderr}");
    assert!(stderr.contains("web.build.log"), "{stderr}");
}

#[test]
fn engine_choices_without_an_engine() {
    let dir = stack("berth-test/no-engine", DOCKERFILE);
    let out = berth(dir.path(), &["build", "web"], Some("nerdctl"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("BERTH_CONTAINER_ENGINE=\"nerdctl\" names neither docker nor podman"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(dir.path(), &["build", "web"], Some("/nonexistent/podman"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );

    // `none`: web falls back to its process build, and says so.
    let out = berth(dir.path(), &["build", "web"], Some("none"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no container engine here"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("web"), "{}", text(&out.stdout));

    // A service that only has an image cannot be built without an engine.
    std::fs::write(
        dir.path().join("berth.toml"),
        "[stack]\nname = \"demo\"\n[services.web]\nport = 80\nbuild = { dockerfile = \"Dockerfile\" }\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["build"], Some("none"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("builds only an image") && stderr.contains("no container engine found"),
        "{stderr}"
    );
}

#[test]
fn down_without_a_berth_removes_the_containers_a_killed_one_left() {
    let Some(engine) = container_engine() else {
        return;
    };
    let dir = stack("berth-test/down-leftovers", DOCKERFILE);
    let name = format!("berth-down-leftover-{}", std::process::id());
    // What a killed berth of this stack leaves: a container labelled with its state dir.
    let state = dir.path().canonicalize().unwrap().join(".berth");
    let status = Command::new(&engine)
        .args(["run", "--detach", "--name", &name, "--label"])
        .arg(format!("berth.state={}", state.display()))
        .args(["docker.io/library/debian:bookworm-slim", "sleep", "600"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = berth(dir.path(), &["down"], engine.to_str());
    let left = Command::new(&engine)
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("name=^{name}$"),
        ])
        .output()
        .unwrap();
    let _ = Command::new(&engine)
        .args(["rm", "--force", &name])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("removed 1 container(s) a killed berth left"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&left.stdout).trim(), "");
}

/// A git repository whose one service `web` runs from containers: `service` gives its image
/// or Dockerfile build; the balancer listens on a free loopback port.
fn container_stack(service: &str, dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stack = format!(
        r#"
[stack]
name = "demo"

[environments.local]
listen = "127.0.0.1:{port}"
health_check_interval = "2s"

[services.web]
port = 8080
repository = "berth-test/stall-{pid}"
{service}
health_check = {{ path = "/", interval = "5s", timeout = "2s", healthy_threshold = 2, unhealthy_threshold = 2, matcher = "200" }}
"#,
        pid = std::process::id()
    );
    std::fs::write(dir.path().join("berth.toml"), stack).unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(dir.path().join(".gitignore"), ".berth\n").unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "one"]);
    dir
}

/// `berth up -d` in `dir` with `engine`, bounded (4 minutes).
fn up_detached_with(dir: &Path, engine: &str) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
        .args(["up", "-d"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("BERTH_CONTAINER_ENGINE", engine)
        .env_remove("BERTH_FILE")
        .env_remove("BERTH_ENV");
    let outcome = up_detached(command, std::time::Duration::from_secs(240));
    if outcome.0.is_none() {
        let _ = berth(dir, &["down"], Some(engine));
    }
    outcome
}

/// The containers labelled with `dir`'s state directory.
fn stack_containers(engine: &Path, dir: &Path) -> String {
    let state = dir.canonicalize().unwrap().join(".berth");
    let out = Command::new(engine)
        .args(["ps", "--all", "--quiet", "--filter"])
        .arg(format!("label=berth.state={}", state.display()))
        .output()
        .unwrap();
    text(&out.stdout).trim().to_owned()
}

#[test]
fn up_with_an_image_that_does_not_exist_stops_with_the_pull_error() {
    let Some(engine) = container_engine() else {
        return;
    };
    let image = format!("localhost/berth-test/missing-{}:nope", std::process::id());
    let dir = container_stack(&format!("image = \"{image}\""), DOCKERFILE);
    let outcome = up_detached_with(dir.path(), engine.to_str().unwrap());
    assert_stalled(
        &outcome,
        "web",
        &format!("CannotPullContainerError: pull image {image}: "),
    );
    assert_eq!(stack_containers(&engine, dir.path()), "");
}

#[test]
fn up_with_a_container_that_never_opens_its_port_stops_and_leaves_no_container() {
    let Some(engine) = container_engine() else {
        return;
    };
    let repository = format!("berth-test/stall-{}", std::process::id());
    let _cleanup = ImageCleanup {
        engine: engine.clone(),
        repository,
    };
    let dir = container_stack(
        r#"build = { context = ".", dockerfile = "Dockerfile" }"#,
        "FROM docker.io/library/debian:bookworm-slim\nCMD [\"sleep\", \"600\"]\n",
    );
    let outcome = up_detached_with(dir.path(), engine.to_str().unwrap());
    assert_stalled(
        &outcome,
        "web",
        "Task failed ELB health checks in (target-group",
    );
    assert_eq!(stack_containers(&engine, dir.path()), "");
}
