//! Container tasks with a real engine (podman; `scripts/container-setup` makes its base
//! image): published port, environment and secrets, logs, SIGTERM then SIGKILL through the
//! engine, OOM as ECS reports it, the health check inside the container, no container left
//! after a stop, and a killed berth's containers found by their label.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_local::engine::{Engine, EngineKind};
use berth_local::task::{
    ContainerHealthCheck, ContainerNetwork, ContainerRun, HealthStatus, OUT_OF_MEMORY, OutputSink,
    OutputStream, STATE_LABEL, SecretValue, StopCode, Task, TaskId, TaskOutput, TaskSpec,
    TaskStatus, engine_secret_prefix, free_port, remove_leftovers,
};
use berth_testkit::{ImageCleanup, container_engine, http_get};

use crate::support::{eventually, within};

const BASE: &str = "docker.io/library/debian:bookworm-slim";

fn engine(program: PathBuf) -> Engine {
    Engine {
        kind: EngineKind::Podman,
        program,
    }
}

fn run(engine: &Engine, image: &str, label: &str) -> ContainerRun {
    ContainerRun {
        engine: engine.clone(),
        image: image.to_owned(),
        container_port: 8080,
        network: ContainerNetwork::Publish,
        cpu_units: 256,
        memory_mib: 512,
        labels: vec![(STATE_LABEL.to_owned(), label.to_owned())],
        name: format!("berth-{}", TaskId::random()),
        engine_secrets: None,
    }
}

/// The web frontend's binary (from this workspace's build) in an image: an HTTP server with
/// `/health`, built in seconds.
fn web_image(program: &PathBuf) -> (String, ImageCleanup) {
    let repository = format!("berth-test/web-{}", std::process::id());
    let cleanup = ImageCleanup {
        engine: program.clone(),
        repository: repository.clone(),
    };
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(
        berth_testkit::bin_path("file-analyzer-web"),
        context.path().join("web"),
    )
    .unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!("FROM {BASE}\nCOPY web /web\nUSER 10001\nENTRYPOINT [\"/web\"]\n"),
    )
    .unwrap();
    let image = format!("localhost/{repository}:test");
    let status = Command::new(program)
        .args(["build", "--format", "docker", "-t", &image])
        .arg(context.path())
        .status()
        .unwrap();
    assert!(status.success(), "test image builds");
    (image, cleanup)
}

fn container_exists(program: &PathBuf, name: &str) -> bool {
    let out = Command::new(program)
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("name=^{name}$"),
        ])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// The engine secrets whose names start with `prefix`.
fn engine_secrets(program: &PathBuf, prefix: &str) -> Vec<String> {
    let out = Command::new(program)
        .args(["secret", "ls", "--noheading", "--format", "{{.Name}}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "podman secret ls");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn exec(program: &PathBuf, name: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(["exec", name])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl OutputSink for Lines {
    fn line(&self, _: OutputStream, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
}

#[tokio::test]
async fn a_container_task_serves_on_its_port_with_its_environment_and_stops_cleanly() {
    let Some(program) = container_engine() else {
        return;
    };
    let (image, _cleanup) = web_image(&program);
    let engine = engine(program.clone());
    let label = format!("/test/serves-{}", std::process::id());
    let container = run(&engine, &image, &label);
    let name = container.name.clone();
    let secret_prefix = engine_secret_prefix(&label);
    let lines = Arc::new(Lines::default());
    let mut spec = TaskSpec::new("/unused");
    spec.env = vec![("API_URL".into(), "http://127.0.0.1:9".into())];
    spec.secrets = vec![("BERTH_TEST_SECRET".into(), SecretValue::new("s3cr3t-value"))];
    spec.stop_timeout = Duration::from_secs(20);
    spec.output = TaskOutput::Lines(lines.clone());
    spec.health_check = Some(ContainerHealthCheck {
        // ECS runs CMD-SHELL with /bin/sh (dash here): bash for /dev/tcp.
        command: "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$PORT'".into(),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        retries: 2,
        start_period: Duration::ZERO,
    });
    spec.container = Some(container);
    let port = free_port().unwrap();
    let task = Task::launch(TaskId::random(), spec, port).await;
    task.mark_running();

    // The container port is published on the task's loopback port.
    within("the container to answer on its port", async {
        loop {
            if tokio::task::spawn_blocking(move || http_get(port, "/health"))
                .await
                .unwrap()
                .is_some_and(|r| r.status == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // The check runs inside the container (bash's /dev/tcp on the container's own PORT).
    let mut states = task.subscribe();
    within(
        "the container health check to pass",
        states.wait_for(|s| s.health_status == HealthStatus::Healthy),
    )
    .await
    .unwrap();
    assert_eq!(exec(&program, &name, &["printenv", "PORT"]), "8080");
    // The app (the container's first process, exec'd by the secrets' wrapper) has the
    // secret in its environment.
    let app_environment = exec(
        &program,
        &name,
        &["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"],
    );
    assert!(
        app_environment
            .lines()
            .any(|l| l == "BERTH_TEST_SECRET=s3cr3t-value"),
        "{app_environment}"
    );
    assert!(
        app_environment.lines().any(|l| l == "PORT=8080"),
        "{app_environment}"
    );
    assert_eq!(exec(&program, &name, &["id", "-u"]), "10001");
    // The value is in none of what `inspect` shows (the command line, `Config.Env`, …), only
    // the engine secret's name is.
    let inspect = Command::new(&program)
        .args(["inspect", &name])
        .output()
        .unwrap();
    assert!(inspect.status.success());
    let inspect = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.contains("BERTH_TEST_SECRET"), "{inspect}");
    assert!(!inspect.contains("s3cr3t-value"), "{inspect}");
    assert_eq!(engine_secrets(&program, &secret_prefix).len(), 1);
    // --memory and --cpus are the task's size.
    let limits = Command::new(&program)
        .args([
            "inspect",
            "--format",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &name,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&limits.stdout).trim(),
        "536870912 250000000"
    );
    // The app's output reached the task's log stream.
    eventually("the app's start line in the log", || {
        lines
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("listening"))
    })
    .await;

    let stopped = within(
        "the task to stop",
        task.stop(StopCode::UserInitiated, "test over"),
    )
    .await;
    assert_eq!(stopped.last_status, TaskStatus::Stopped);
    // The app honoured SIGTERM: a clean exit, not the SIGKILL after the timeout.
    assert_eq!(stopped.exit_code, Some(0), "{stopped:?}");
    assert!(
        !container_exists(&program, &name),
        "the container is removed"
    );
    assert_eq!(
        engine_secrets(&program, &secret_prefix),
        Vec::<String>::new(),
        "the task's engine secret is removed with its container"
    );
}

#[tokio::test]
async fn a_container_over_its_memory_is_stopped_as_out_of_memory_with_137() {
    let Some(program) = container_engine() else {
        return;
    };
    let engine = engine(program.clone());
    let mut container = run(&engine, BASE, "/test/oom");
    container.memory_mib = 16;
    let name = container.name.clone();
    let mut spec = TaskSpec::new("/unused");
    // Holds 200 MB in a shell variable: far over 16 MiB.
    spec.args = vec![
        "bash".into(),
        "-c".into(),
        "a=$(head -c 200000000 /dev/zero | tr '\\0' x); sleep 600".into(),
    ];
    spec.container = Some(container);
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    task.mark_running();
    let stopped = within("the container to be killed", task.stopped()).await;
    assert_eq!(stopped.exit_code, Some(137), "{stopped:?}");
    assert_eq!(stopped.stopped_reason.as_deref(), Some(OUT_OF_MEMORY));
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert!(!container_exists(&program, &name));
}

#[tokio::test]
async fn an_image_that_does_not_exist_fails_to_start_as_ecs_says_it() {
    let Some(program) = container_engine() else {
        return;
    };
    let engine = engine(program.clone());
    let image = format!("localhost/berth-test/missing-{}:nope", std::process::id());
    let container = run(&engine, &image, "/test/missing-image");
    let name = container.name.clone();
    let mut spec = TaskSpec::new("/unused");
    spec.container = Some(container);
    let task = within(
        "the launch to give up",
        Task::launch(TaskId::random(), spec, free_port().unwrap()),
    )
    .await;
    let stopped = task.snapshot();
    assert_eq!(stopped.last_status, TaskStatus::Stopped, "{stopped:?}");
    assert_eq!(stopped.stop_code, Some(StopCode::TaskFailedToStart));
    let reason = stopped.stopped_reason.unwrap_or_default();
    assert!(
        reason.starts_with(&format!("CannotPullContainerError: pull image {image}: ")),
        "{reason}"
    );
    assert!(
        !reason.contains("retrying") && !reason.contains(" | "),
        "only the engine's final error: {reason}"
    );
    assert!(!container_exists(&program, &name));
}

#[tokio::test]
async fn a_container_that_ignores_sigterm_is_killed_after_its_stop_timeout() {
    let Some(program) = container_engine() else {
        return;
    };
    let engine = engine(program.clone());
    let container = run(&engine, BASE, "/test/sigkill");
    let name = container.name.clone();
    let mut spec = TaskSpec::new("/unused");
    spec.args = vec![
        "bash".into(),
        "-c".into(),
        "trap '' TERM; touch /tmp/ready; while true; do sleep 0.1; done".into(),
    ];
    spec.stop_timeout = Duration::from_secs(1);
    spec.container = Some(container);
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    task.mark_running();
    within("the trap to be set", async {
        while exec(&program, &name, &["ls", "/tmp/ready"]).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let stopped = within(
        "the task to stop",
        task.stop(StopCode::UserInitiated, "test"),
    )
    .await;
    assert_eq!(
        stopped.exit_code,
        Some(137),
        "SIGKILL after SIGTERM was ignored: {stopped:?}"
    );
    assert_eq!(stopped.stopped_reason.as_deref(), Some("test"));
    assert!(!container_exists(&program, &name));
}

#[tokio::test]
async fn containers_a_killed_berth_left_are_found_by_their_label_and_removed() {
    let Some(program) = container_engine() else {
        return;
    };
    let engine = engine(program.clone());
    let label = format!("/test/leftovers-{}", std::process::id());
    let name = format!("berth-{}", TaskId::random());
    // What a killed berth leaves: a labelled container whose `run` client is gone.
    let status = Command::new(&program)
        .args(["run", "--detach", "--name", &name, "--label"])
        .arg(format!("{STATE_LABEL}={label}"))
        .args([BASE, "sleep", "600"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(container_exists(&program, &name));
    // …and the engine secret of its task.
    let prefix = engine_secret_prefix(&label);
    let created = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf x | {} secret create {prefix}0123456789abcdef01234567 -",
            program.display()
        ))
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(created.success());
    assert_eq!(
        remove_leftovers(&engine, "/test/another-stack")
            .await
            .unwrap(),
        0
    );
    assert!(
        container_exists(&program, &name),
        "another stack's container is kept"
    );
    assert_eq!(engine_secrets(&program, &prefix).len(), 1, "and its secret");
    assert_eq!(remove_leftovers(&engine, &label).await.unwrap(), 1);
    assert!(!container_exists(&program, &name));
    assert_eq!(engine_secrets(&program, &prefix), Vec::<String>::new());
}

/// Both apps' real Dockerfiles build (with the `dev` profile: the Rust builder stage is the
/// same, the compile shorter; the registry and target cache mounts keep a rebuild warm),
/// and each image runs as its non-root user and passes its own HEALTHCHECK.
#[tokio::test(flavor = "multi_thread")]
async fn the_apps_dockerfiles_build_and_their_healthchecks_pass() {
    let Some(program) = container_engine() else {
        return;
    };
    let engine = engine(program.clone());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap();
    let state = tempfile::tempdir().unwrap();
    for (app, health) in [("api", "/api/health"), ("web", "/health")] {
        let repository = format!("berth-test/dockerfile-{app}-{}", std::process::id());
        let _cleanup = ImageCleanup {
            engine: program.clone(),
            repository: repository.clone(),
        };
        let build = berth_spec::ImageBuild {
            context: root.clone(),
            dockerfile: root.join(format!("apps/{app}/Dockerfile")),
            target: None,
            args: [("PROFILE".to_owned(), "dev".to_owned())].into(),
        };
        let iid = state.path().join(format!("{app}.iid"));
        let request = berth_local::engine::ImageBuildRequest {
            build: &build,
            repository: &repository,
            tags: &[],
            iidfile: &iid,
        };
        let id = engine
            .build(&request, state.path().join(format!("{app}.log")), |_| {})
            .await
            .unwrap_or_else(|e| panic!("apps/{app}/Dockerfile builds: {e}"));
        let inspect = Command::new(&program)
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Config.User}} {{len .Config.Healthcheck.Test}}",
                &id,
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout).trim(),
            "10001:10001 4",
            "{app}"
        );

        let name = format!("berth-dockerfile-{app}-{}", std::process::id());
        let port = free_port().unwrap();
        let started = Command::new(&program)
            .args(["run", "--detach", "--name", &name, "--publish"])
            .arg(format!(
                "127.0.0.1:{port}:{}",
                if app == "api" { 3001 } else { 80 }
            ))
            // Port 80 as uid 10001 (web): what docker allows by default.
            .args(["--sysctl", "net.ipv4.ip_unprivileged_port_start=0"])
            .args(["--env", "API_URL=http://127.0.0.1:9", &id])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(started.success());
        let answered = within("the app to answer", async {
            loop {
                let response = tokio::task::spawn_blocking(move || http_get(port, health))
                    .await
                    .unwrap();
                if let Some(response) = response {
                    return response.status;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        // The image's own HEALTHCHECK (bash /dev/tcp, no curl in the image) passes.
        let check = Command::new(&program)
            .args(["healthcheck", "run", &name])
            .output()
            .unwrap();
        let _ = Command::new(&program)
            .args(["rm", "--force", &name])
            .output();
        assert_eq!(answered, 200, "{app}");
        assert!(
            check.status.success(),
            "{app}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
