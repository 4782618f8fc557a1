//! End to end on the example stack (examples/file-analyzer/berth.toml): PostgreSQL, two
//! frontend and two backend tasks of the real apps, the load balancer, parameters, logs.
//!
//! The stack file is the example itself with two test changes: the listener gets a free
//! port, and each service's build is `true` with the already-built debug binary as its
//! artifact (`scripts/test` builds every binary first), so no test compiles the apps again.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use berth_local::cleanup::RunState;
use berth_local::control::StatusReport;
use berth_local::database::{DatabaseState, LocalPostgres, LocalPostgresConfig};
use berth_local::params::ParamStore;
use berth_local::runtime::{Runtime, RuntimeEvent, UpError, UpOptions, state_dir, up};
use berth_local::service::ServiceStatus;
use berth_local::state_dir::StateDir;
use berth_local::task::{STATE_LABEL, StopCode, TASK_OS_USER, TaskStatus, TaskUser};
use berth_testkit::{ImageCleanup, bin_path, container_engine};
use berth_testkit::{free_port, http_get, http_request};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use crate::support::{eventually, process_gone, within};

const EXAMPLE: &str = include_str!("../../../../examples/file-analyzer/berth.toml");

/// A temporary copy of the example stack.
struct Fixture {
    _dir: tempfile::TempDir,
    stack_file: PathBuf,
    port: u16,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut text = replace_once(
            EXAMPLE,
            "listen = \"127.0.0.1:8080\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
        for (app, binary) in [("web", "file-analyzer-web"), ("api", "file-analyzer-api")] {
            text = replace_once(
                &text,
                &format!(
                    "build = {{ context = \"../..\", command = \"cargo build --release -p file-analyzer-{app}\", artifact = \"target/release/file-analyzer-{app}\", dockerfile = \"apps/{app}/Dockerfile\" }}"
                ),
                &format!(
                    "build = {{ context = \".\", command = \"true\", artifact = \"{}\" }}",
                    bin_path(binary).display()
                ),
            );
        }
        let stack_file = dir.path().join("berth.toml");
        std::fs::write(&stack_file, text).unwrap();
        Self {
            _dir: dir,
            stack_file,
            port,
        }
    }

    /// Appends TOML to the stack file.
    fn append(&self, text: &str) {
        let mut stack = std::fs::read_to_string(&self.stack_file).unwrap();
        stack.push_str(text);
        std::fs::write(&self.stack_file, stack).unwrap();
    }

    fn stack(&self) -> berth_spec::Stack {
        berth_spec::load(&self.stack_file).unwrap()
    }

    fn state(&self) -> StateDir {
        let stack = self.stack();
        state_dir(&stack, stack.environment("local").unwrap()).unwrap()
    }

    fn listen(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Brings the stack up in this process (with its control socket), after no killed
    /// berth, and waits until every target is healthy.
    async fn up_steady(&self) -> Runtime {
        let options = UpOptions {
            environment: "local".into(),
            control_socket: true,
            interrupt: CancellationToken::new(),
        };
        let (runtime, recovery) = up(&self.stack(), &options, Arc::new(|_| {})).await.unwrap();
        assert!(recovery.is_none());
        within("every target healthy", runtime.wait_steady()).await;
        runtime
    }

    /// Runs the berth binary on this stack.
    fn berth(&self, args: &[&str]) -> Output {
        Command::new(bin_path("berth"))
            .arg("--file")
            .arg(&self.stack_file)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn status_json(&self) -> serde_json::Value {
        let output = self.berth(&["status", "--output", "json"]);
        assert!(output.status.success(), "berth status: {}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the example stack no longer contains `{from}`: update the e2e fixture"
    );
    text.replacen(from, to, 1)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Uploads a small text file through the balancer; returns its id.
fn upload(port: u16, name: &str, content: &str) -> String {
    let boundary = "berth-e2e-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let response = http_request(
        port,
        "POST",
        "/api/files/upload",
        &[("Content-Type", &content_type)],
        body.as_bytes(),
    )
    .expect("the balancer answers");
    assert_eq!(response.status, 201, "upload: {}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    json["data"]["id"].as_str().unwrap().to_owned()
}

fn backend(status: &StatusReport) -> &ServiceStatus {
    status
        .services
        .iter()
        .find(|s| s.service_name == "backend-service")
        .expect("the stack has a backend-service")
}

fn backend_pids(runtime: &Runtime) -> Vec<u32> {
    backend(&runtime.status())
        .tasks
        .iter()
        .filter(|t| t.task.last_status == TaskStatus::Running)
        .filter_map(|t| t.task.pid)
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn file_analyzer_serves_heals_and_stops_everything() {
    let fx = Fixture::new();
    let runtime = fx.up_steady().await;
    let port = fx.port;

    // `/` reaches the frontend, `/api/*` the backend.
    let home = http_get(port, "/").unwrap();
    assert_eq!(home.status, 200);
    assert!(home.text().contains("File Analyzer"), "{}", home.text());
    let health = http_get(port, "/api/health").unwrap();
    assert_eq!(health.status, 200);
    assert!(health.text().contains("ok"), "{}", health.text());

    // A file uploaded through the balancer is served by every later request, whichever of
    // the two backend tasks answers (round robin over both).
    let id = upload(port, "hello.txt", "hello from berth");
    for _ in 0..6 {
        let download = http_get(port, &format!("/api/files/{id}/download")).unwrap();
        assert_eq!(download.status, 200);
        assert_eq!(download.text(), "hello from berth");
    }

    // The generated database password reached the backend's environment (the upload above
    // went through the database with it) and appears nowhere else.
    let params = ParamStore::open(&fx.state()).unwrap();
    let password = params
        .value("/ecs/backend/DB_PASSWORD")
        .unwrap()
        .expect("berth generated the password");
    let password = password.expose().to_owned();
    assert!(password.len() >= 16);
    let pid = backend_pids(&runtime)[0];
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|var| var == format!("DB_PASSWORD={password}").as_bytes())
    );
    // The task is told to listen on loopback, and runs unprivileged when berth is root
    // (from its registry snapshot under a 0700 temporary directory).
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|var| var == b"HOST=127.0.0.1")
    );
    if nix::unistd::geteuid().is_root() {
        let uid = TaskUser::lookup(TASK_OS_USER).unwrap().uid;
        assert_eq!(process_uids(pid), [uid; 4]);
    }
    let status_json = serde_json::to_string(&runtime.status()).unwrap();
    assert!(
        !status_json.contains(&password),
        "the password is in the status"
    );
    for file in files_under(&fx.state().logs()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains(&password),
            "the password is in {}",
            file.display()
        );
    }

    // kill -9 of a backend task: a replacement becomes healthy, the service is back to 2.
    let before = backend_pids(&runtime);
    assert_eq!(before.len(), 2);
    let victim = before[0];
    let victim_id = runtime
        .status()
        .services
        .iter()
        .flat_map(|s| s.tasks.iter())
        .find(|t| t.task.pid == Some(victim))
        .map(|t| t.task.task_id.clone())
        .unwrap();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    eventually("a healthy replacement and two backend tasks", || {
        let steady = backend(&runtime.status()).steady_state;
        let pids = backend_pids(&runtime);
        steady && pids.len() == 2 && !pids.contains(&victim)
    })
    .await;
    let status = runtime.status();
    let killed = backend(&status)
        .tasks
        .iter()
        .find(|t| t.task.task_id == victim_id)
        .expect("the killed task is listed");
    assert_eq!(killed.task.last_status, TaskStatus::Stopped);
    assert_eq!(killed.task.exit_code, Some(137));
    assert_eq!(
        killed.task.stop_code,
        Some(StopCode::EssentialContainerExited)
    );
    let download = http_get(port, &format!("/api/files/{id}/download")).unwrap();
    assert_eq!(download.status, 200);

    // Ordered stop: every task gone, the port free, PostgreSQL stopped, run files removed.
    let pids: Vec<u32> = runtime
        .status()
        .services
        .iter()
        .flat_map(|s| s.tasks.iter().filter_map(|t| t.task.pid))
        .collect();
    let postgres = RunState::read(&fx.state().run())
        .unwrap()
        .and_then(|state| state.postgres)
        .expect("the run state records PostgreSQL");
    assert!(postgres.data_dir.join("postmaster.pid").exists());
    within("the shutdown", runtime.shutdown()).await;
    for pid in pids {
        eventually("task processes to be gone", || process_gone(pid)).await;
    }
    assert!(
        TcpListener::bind(fx.listen()).is_ok(),
        "the listener port is free"
    );
    assert!(!fx.state().run().join("state.json").exists());
    assert!(!fx.state().run().join("control.sock").exists());
    assert!(
        !postgres.data_dir.join("postmaster.pid").exists(),
        "PostgreSQL is stopped"
    );
}

/// Real, effective, saved and filesystem uid of a process.
fn process_uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .map(|uid| uid.parse().unwrap())
        .collect()
}

/// The database events up to the next "DB instance restarted".
async fn restarted(events: &mut tokio::sync::broadcast::Receiver<RuntimeEvent>) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match events.recv().await {
            Ok(RuntimeEvent::Database { message }) => {
                seen.push(message.clone());
                if message.contains("DB instance restarted") {
                    return seen;
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(error) => panic!("events ended: {error}"),
        }
    }
}

/// kill -9 of the postmaster: berth restarts it on the same port (at once; after a back-off
/// when it dies again right after a restart), crash recovery keeps the committed rows, the
/// API's readiness comes back, and `berth status` (text and JSON) shows the database, its
/// restarts and the last event.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_postgres_is_restarted_and_keeps_committed_rows() {
    let fx = Fixture::new();
    let runtime = fx.up_steady().await;
    let id = upload(fx.port, "kept.txt", "committed before the crash");
    let before = runtime.status().database.expect("a database line");
    assert_eq!(
        (before.state, before.restarts),
        (DatabaseState::Available, 0)
    );

    let mut events = runtime.events();
    let postmaster = postmaster_pid(&fx);
    assert_eq!(before.pid, Some(postmaster));
    kill(Pid::from_raw(postmaster as i32), Signal::SIGKILL).unwrap();
    let seen = within("the database restarted event", restarted(&mut events)).await;
    assert!(
        seen[0].starts_with("(database fileanalyzer) the PostgreSQL server")
            && seen[0].contains(&format!("pid {postmaster}"))
            && seen[0].contains("exited unexpectedly"),
        "{seen:?}"
    );
    assert!(process_gone(postmaster));
    assert_ne!(postmaster_pid(&fx), postmaster);

    // Killed again at once after its restart: a restart loop, so the next attempt waits.
    // Once berth watches the new server (killed before that, it is "not running", no pid).
    let first_restart = postmaster_pid(&fx);
    eventually("berth to watch the restarted server", || {
        runtime.status().database.and_then(|d| d.pid) == Some(first_restart)
    })
    .await;
    kill(Pid::from_raw(first_restart as i32), Signal::SIGKILL).unwrap();
    let second = within("the second restart", restarted(&mut events)).await;
    assert!(
        second[0].contains(&format!("pid {first_restart}"))
            && second[0].contains("a restart loop: next attempt in 1s"),
        "{second:?}"
    );
    assert_eq!(runtime.status().database.unwrap().restarts, 2);

    // The API reconnects: ready again, and the row committed before the crashes is there.
    eventually("the API to be ready again", || {
        http_get(fx.port, "/api/health/ready").is_some_and(|r| r.status == 200)
    })
    .await;
    let download = http_get(fx.port, &format!("/api/files/{id}/download")).unwrap();
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.text(), "committed before the crash");

    let json = fx.status_json();
    let database = &json["database"];
    assert_eq!(database["state"], "available", "{database}");
    assert_eq!(database["restarts"], 2, "{database}");
    assert_eq!(database["port"], before.port, "the tasks' port is kept");
    assert_eq!(database["pid"], postmaster_pid(&fx));
    assert!(
        database["lastEvent"]["message"]
            .as_str()
            .unwrap()
            .contains("DB instance restarted"),
        "{database}"
    );
    let text = fx.berth(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("fileanalyzer"))
        .unwrap_or_else(|| panic!("no database line in\n{text}"));
    assert!(
        line.contains("available") && line.contains("DB instance restarted"),
        "{line}"
    );

    // A deliberate stop is not a crash: the server stays stopped.
    let data_dir = RunState::read(&fx.state().run())
        .unwrap()
        .and_then(|s| s.postgres)
        .unwrap()
        .data_dir;
    within("the shutdown", runtime.shutdown()).await;
    assert!(!data_dir.join("postmaster.pid").exists());
    assert_eq!(
        runtime.status().database.map(|d| (d.state, d.restarts)),
        Some((DatabaseState::Stopped, 2))
    );
}

/// The pid of the stack's PostgreSQL, from the run state and its `postmaster.pid`.
fn postmaster_pid(fx: &Fixture) -> u32 {
    let state = RunState::read(&fx.state().run()).unwrap().unwrap();
    let data_dir = state
        .postgres
        .expect("the run state records PostgreSQL")
        .data_dir;
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_detached_killed_and_recovered() {
    let fx = Fixture::new();

    let output = fx.berth(&["up", "-d"]);
    assert!(output.status.success(), "berth up -d: {}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("127.0.0.1:{}", fx.port)));
    let status = fx.status_json();
    let first_berth = status["pid"].as_u64().unwrap() as u32;
    let task_pids = |status: &serde_json::Value| -> Vec<u32> {
        status["services"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["tasks"].as_array().unwrap().iter())
            .filter(|t| t["lastStatus"] == "RUNNING")
            .filter_map(|t| t["pid"].as_u64())
            .map(|p| p as u32)
            .collect()
    };
    let leftovers = task_pids(&status);
    assert_eq!(leftovers.len(), 4);
    assert_eq!(http_get(fx.port, "/api/health").unwrap().status, 200);
    let again = fx.berth(&["up", "-d"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );

    // `berth scale` through the control socket.
    let output = fx.berth(&["scale", "frontend", "1"]);
    assert!(output.status.success(), "berth scale: {}", stderr(&output));
    eventually("one frontend task", || {
        fx.status_json()["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["serviceName"] == "frontend-service" && s["runningCount"] == 1)
    })
    .await;
    let leftovers: Vec<u32> = task_pids(&fx.status_json());

    // berth itself is killed: its tasks and PostgreSQL are left behind.
    let first_postgres = postmaster_pid(&fx);
    kill(Pid::from_raw(first_berth as i32), Signal::SIGKILL).unwrap();
    eventually("berth to be gone", || process_gone(first_berth)).await;
    assert!(leftovers.iter().all(|pid| !process_gone(*pid)));
    assert!(!process_gone(first_postgres));
    let status = fx.berth(&["status"]);
    assert_eq!(status.status.code(), Some(1), "no berth answers");

    // The next `berth up` cleans up, then starts normally.
    let output = fx.berth(&["up", "-d"]);
    assert!(
        output.status.success(),
        "second berth up -d: {}",
        stderr(&output)
    );
    for pid in &leftovers {
        eventually("leftover tasks to be gone", || process_gone(*pid)).await;
    }
    let status = fx.status_json();
    let second_berth = status["pid"].as_u64().unwrap() as u32;
    assert_ne!(second_berth, first_berth);
    let fresh = task_pids(&status);
    assert_eq!(fresh.len(), 4, "desired counts from the stack file again");
    assert!(fresh.iter().all(|pid| !leftovers.contains(pid)));
    // PostgreSQL was stopped and started again, and works: a list goes through it.
    assert!(process_gone(first_postgres));
    assert_ne!(postmaster_pid(&fx), first_postgres);
    let files = http_get(fx.port, "/api/files").unwrap();
    assert_eq!(files.status, 200, "{}", files.text());

    let output = fx.berth(&["down"]);
    assert!(output.status.success(), "berth down: {}", stderr(&output));
    for pid in fresh {
        eventually("tasks to be gone after down", || process_gone(pid)).await;
    }
    // The detached berth itself exits too (it stayed, stopped, in its runtime once).
    eventually("the detached berth to exit after down", || {
        process_gone(second_berth)
    })
    .await;
    assert!(
        TcpListener::bind(fx.listen()).is_ok(),
        "the listener port is free"
    );
    let output = fx.berth(&["down"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing is running"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_up_stops_what_it_started() {
    let fx = Fixture::new();
    // A SecureString only the operator can set, and nobody did.
    fx.append("\n[parameters.\"/ecs/frontend/UNSET_TOKEN\"]\ntype = \"SecureString\"\n");
    let stack = fx.stack();
    let options = UpOptions {
        environment: "local".into(),
        control_socket: true,
        interrupt: CancellationToken::new(),
    };
    let error = match up(&stack, &options, Arc::new(|_| {})).await {
        Ok(_) => panic!("up succeeded without the operator's parameter"),
        Err(error) => error,
    };
    assert!(
        error
            .to_string()
            .contains("berth param put /ecs/frontend/UNSET_TOKEN"),
        "{error}"
    );
    assert_start_undone(&fx, &stack);
}

/// After a start that did not finish: the database had been started and is stopped again,
/// the listener port is free, no run state is left.
fn assert_start_undone(fx: &Fixture, stack: &berth_spec::Stack) {
    assert!(
        TcpListener::bind(fx.listen()).is_ok(),
        "the listener port is free"
    );
    let database = stack.database.as_ref().unwrap();
    let postgres = LocalPostgres::new(
        &fx.state(),
        LocalPostgresConfig {
            version: Some(database.managed().unwrap().version.clone()),
            database: database.name.clone(),
            username: database.managed().unwrap().username.clone(),
        },
    )
    .unwrap();
    assert!(
        postgres.data_dir().join("PG_VERSION").exists(),
        "the database had been started"
    );
    assert!(
        !postgres.data_dir().join("postmaster.pid").exists(),
        "PostgreSQL was left running"
    );
    assert!(!fx.state().run().join("state.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_start_stops_what_it_started() {
    let fx = Fixture::new();
    let stack = fx.stack();
    let interrupt = CancellationToken::new();
    let options = UpOptions {
        environment: "local".into(),
        control_socket: true,
        interrupt: interrupt.clone(),
    };
    // Ctrl-C while PostgreSQL is starting, the slow part of a start.
    let progress = Arc::new(move |event: RuntimeEvent| {
        if matches!(&event, RuntimeEvent::Progress { message } if message.starts_with("starting PostgreSQL"))
        {
            interrupt.cancel();
        }
    });
    match up(&stack, &options, progress).await {
        Ok(_) => panic!("up went on after the interrupt"),
        Err(UpError::Interrupted) => {}
        Err(other) => panic!("expected an interrupt, got {other}"),
    }
    assert_start_undone(&fx, &stack);
}

/// The example stack with both services built as images by the container engine: each
/// Dockerfile copies the already-built debug binary into `debian:bookworm-slim` (the real
/// Dockerfiles' build is `containers::the_apps_dockerfiles_build`), repositories unique to
/// the test, removed at its end.
fn image_fixture(engine: &Path) -> (Fixture, Vec<ImageCleanup>) {
    let fx = Fixture::new();
    let dir = fx.stack_file.parent().unwrap().to_path_buf();
    let mut text = std::fs::read_to_string(&fx.stack_file).unwrap();
    let mut cleanups = Vec::new();
    for (app, binary, repository) in [
        ("web", "file-analyzer-web", "frontend-repo"),
        ("api", "file-analyzer-api", "backend-repo"),
    ] {
        std::fs::copy(bin_path(binary), dir.join(binary)).unwrap();
        std::fs::write(
            dir.join(format!("Dockerfile.{app}")),
            format!(
                "FROM docker.io/library/debian:bookworm-slim\nCOPY {binary} /app\nUSER 10001\nENTRYPOINT [\"/app\"]\n"
            ),
        )
        .unwrap();
        text = replace_once(
            &text,
            &format!(
                "build = {{ context = \".\", command = \"true\", artifact = \"{}\" }}",
                bin_path(binary).display()
            ),
            &format!("build = {{ context = \".\", dockerfile = \"Dockerfile.{app}\" }}"),
        );
        let unique = format!("berth-test/e2e-{repository}-{}", std::process::id());
        text = replace_once(
            &text,
            &format!("repository = \"{repository}\""),
            &format!("repository = \"{unique}\""),
        );
        cleanups.push(ImageCleanup {
            engine: engine.to_path_buf(),
            repository: unique,
        });
    }
    std::fs::write(&fx.stack_file, text).unwrap();
    (fx, cleanups)
}

/// Containers labelled with this stack's state directory.
fn stack_containers(engine: &Path, fx: &Fixture) -> Vec<String> {
    let out = Command::new(engine)
        .args(["ps", "--all", "--format", "{{.Names}}", "--filter"])
        .arg(format!(
            "label={STATE_LABEL}={}",
            fx.state().root().display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn file_analyzer_from_images_serves_heals_and_leaves_no_container() {
    let Some(engine) = container_engine() else {
        return;
    };
    let (fx, _cleanups) = image_fixture(&engine);
    // What a killed berth of this stack left: the next up removes it.
    let leftover = format!("berth-leftover-{}", std::process::id());
    let status = Command::new(&engine)
        .args(["run", "--detach", "--name", &leftover, "--label"])
        .arg(format!("{STATE_LABEL}={}", fx.state().root().display()))
        .args(["docker.io/library/debian:bookworm-slim", "sleep", "600"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let runtime = fx.up_steady().await;
    let port = fx.port;
    let containers = stack_containers(&engine, &fx);
    assert!(!containers.contains(&leftover), "{containers:?}");
    assert_eq!(containers.len(), 4, "two tasks per service: {containers:?}");

    assert_eq!(http_get(port, "/").unwrap().status, 200);
    let health = http_get(port, "/api/health").unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    // Uploads through the balancer are served by both backend containers (one database).
    let id = upload(port, "hello.txt", "hello from a container");
    for _ in 0..6 {
        let download = http_get(port, &format!("/api/files/{id}/download")).unwrap();
        assert_eq!(download.status, 200);
        assert_eq!(download.text(), "hello from a container");
    }

    // A backend container killed: the task stops with 137, a replacement becomes healthy.
    let victim = backend(&runtime.status())
        .tasks
        .iter()
        .find(|t| t.task.last_status == TaskStatus::Running)
        .map(|t| t.task.task_id.clone())
        .unwrap();
    let killed = Command::new(&engine)
        .args(["kill", "--signal", "KILL", &format!("berth-{victim}")])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("a healthy replacement and two backend tasks", || {
        let status = runtime.status();
        let backend = backend(&status);
        let running: Vec<_> = backend
            .tasks
            .iter()
            .filter(|t| t.task.last_status == TaskStatus::Running)
            .collect();
        backend.steady_state
            && running.len() == 2
            && running.iter().all(|t| t.task.task_id != victim)
    })
    .await;
    let status = runtime.status();
    let stopped = backend(&status)
        .tasks
        .iter()
        .find(|t| t.task.task_id == victim)
        .expect("the killed task is listed");
    assert_eq!(stopped.task.exit_code, Some(137));
    assert_eq!(
        stopped.task.stop_code,
        Some(StopCode::EssentialContainerExited)
    );
    assert_eq!(
        http_get(port, &format!("/api/files/{id}/download"))
            .unwrap()
            .status,
        200
    );

    // `berth deploy` of a container service: a new image revision rolls out as containers.
    let before: Vec<String> = running_backend_tasks(&runtime);
    let out = fx.berth(&["deploy", "backend"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = running_backend_tasks(&runtime);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|t| !before.contains(t)),
        "{before:?} → {after:?}"
    );
    let containers = stack_containers(&engine, &fx);
    for task in &after {
        assert!(
            containers.contains(&format!("berth-{task}")),
            "{containers:?}"
        );
    }

    within("the shutdown", runtime.shutdown()).await;
    assert_eq!(stack_containers(&engine, &fx), Vec::<String>::new());
}

fn running_backend_tasks(runtime: &Runtime) -> Vec<String> {
    backend(&runtime.status())
        .tasks
        .iter()
        .filter(|t| t.task.last_status == TaskStatus::Running)
        .map(|t| t.task.task_id.to_string())
        .collect()
}
