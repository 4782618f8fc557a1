//! The control socket: permissions, status / scale / down round trips against a runtime.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use berth_local::cleanup::RunState;
use berth_local::control::{ControlClient, Request, Response};
use berth_local::runtime::{
    NoSecrets, RunStateFile, Runtime, RuntimeParts, StackLauncher, StateWriter, TaskTemplate,
};
use berth_local::service::{CircuitBreaker, DeploymentConfiguration, ServiceSettings};
use berth_local::task::{TASK_OS_USER, TaskStatus, TaskUser};

use crate::support::{eventually, process_gone, within};

pub fn sleeper() -> TaskTemplate {
    TaskTemplate {
        executable: "/bin/sh".into(),
        args: vec!["-c".into(), "exec sleep 600".into()],
        working_dir: None,
        environment: vec![],
        secrets: vec![],
        stop_timeout: Duration::from_secs(5),
        health_check: None,
        container: None,
    }
}

pub fn settings(name: &str, desired: u32) -> ServiceSettings {
    ServiceSettings {
        name: name.to_owned(),
        desired_count: desired,
        configuration: DeploymentConfiguration::default(),
        grace_period: Duration::ZERO,
        target_group: None,
        task_definition: format!("{name}:1"),
        image: format!("{name}@sha256:test"),
        circuit_breaker: CircuitBreaker {
            enable: true,
            rollback: true,
        },
        traffic: None,
    }
}

/// A runtime of one service `worker` with two sleeping tasks.
pub fn start_runtime(run_dir: &std::path::Path) -> Runtime {
    start_runtime_as(run_dir, None).0
}

/// [`start_runtime`] with its tasks run as `user`; also gives the recovery file.
pub fn start_runtime_as(
    run_dir: &std::path::Path,
    user: Option<TaskUser>,
) -> (Runtime, Arc<RunStateFile>) {
    let state_file = Arc::new(RunStateFile::new(run_dir.to_owned()));
    let launcher = StackLauncher {
        templates: [("worker:1".to_owned(), sleeper())].into_iter().collect(),
        secrets: Arc::new(NoSecrets),
        logs: None,
        state_file: Some(Arc::clone(&state_file)),
        user,
    };
    let runtime = Runtime::start(RuntimeParts {
        stack: "test".into(),
        environment: "local".into(),
        url: "http://127.0.0.1:1".into(),
        run_dir: run_dir.to_owned(),
        state_file: Arc::clone(&state_file),
        services: vec![settings("worker", 2)],
        autoscaling: vec![],
        launcher: Arc::new(launcher),
        releases: None,
        router: None,
        local_differences: vec![],
        postgres: None,
        database: None,
        shutdown_steps: vec![],
        control_socket: true,
    })
    .unwrap();
    (runtime, state_file)
}

#[tokio::test]
async fn only_its_user_can_open_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join(".berth/run");
    let runtime = start_runtime(&run);

    let socket_mode = std::fs::metadata(run.join("control.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(socket_mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(&run).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let state_mode = std::fs::metadata(run.join("state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(state_mode & 0o777, 0o600);
    runtime.shutdown().await;
}

/// The first write of the recovery file that holds a task started by a scale-up is the
/// launcher's, not the runtime's periodic rewrite: a berth killed the moment the scheduler
/// knows of a task leaves it findable. Decided on the file's write events, not on timing.
#[tokio::test]
async fn a_started_task_is_first_written_to_the_recovery_file_by_the_launcher() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (runtime, state_file) = start_runtime_as(&run, None);
    within("steady state", runtime.wait_steady()).await;
    let mut writes = state_file.writes();
    let before: Vec<String> = task_ids(&runtime);
    runtime.scale("worker", 3).unwrap();
    let first = within("a write holding the new task", async {
        loop {
            let write = writes.recv().await.expect("no write was missed");
            if write.task_ids.iter().any(|id| !before.contains(id)) {
                return write;
            }
        }
    })
    .await;
    assert_eq!(first.by, StateWriter::Launcher, "{first:?}");
    // And the file on disk holds every task the scheduler shows once it shows them.
    eventually("the third task to show", || task_ids(&runtime).len() == 3).await;
    let recorded: Vec<String> = RunState::read(&run)
        .unwrap()
        .unwrap()
        .tasks
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    for task in task_ids(&runtime) {
        assert!(recorded.contains(&task), "{task} not in {recorded:?}");
    }
    runtime.shutdown().await;
}

fn task_ids(runtime: &Runtime) -> Vec<String> {
    runtime.status().services[0]
        .tasks
        .iter()
        .map(|t| t.task.task_id.to_string())
        .collect()
}

/// As root, the runtime starts its tasks as the unprivileged `berth-task` account (its
/// supplementary groups dropped), and tells each to listen on loopback (`HOST`).
#[tokio::test]
async fn as_root_tasks_run_unprivileged_and_are_told_to_listen_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let user = TaskUser::for_this_berth().unwrap();
    let (runtime, _) = start_runtime_as(&run, user.clone());
    within("steady state", runtime.wait_steady()).await;
    let pids: Vec<u32> = runtime.status().services[0]
        .tasks
        .iter()
        .filter_map(|t| t.task.pid)
        .collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        // RUNNING comes as soon as the process is spawned; `sh` may still be in the middle of
        // exec'ing `sleep`, when /proc/PID/environ reads empty (CI saw exactly that on a cold
        // machine). Wait for the exec to be done, then look.
        eventually("the task to have exec'd sleep", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
                && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| !e.is_empty())
        })
        .await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let uids = field("Uid:");
        match &user {
            Some(user) => {
                assert_eq!(user.name, TASK_OS_USER);
                assert_ne!(user.uid, 0);
                // Real, effective, saved and filesystem uids: all the task's account.
                assert!(uids.iter().all(|u| *u == user.uid.to_string()), "{uids:?}");
                assert!(field("Groups:").is_empty(), "{:?}", field("Groups:"));
            }
            None => assert!(
                uids.iter()
                    .all(|u| *u == nix::unistd::geteuid().to_string())
            ),
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            environ.split(|b| *b == 0).any(|v| v == b"HOST=127.0.0.1"),
            "{}",
            String::from_utf8_lossy(&environ)
        );
    }
    runtime.shutdown().await;
}

#[tokio::test]
async fn status_scale_and_down_through_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let runtime = start_runtime(&run);
    within("steady state", runtime.wait_steady()).await;

    let mut client = ControlClient::connect(&run).await.unwrap();
    let Response::Status { status } = client.request(&Request::Status).await.unwrap() else {
        panic!("expected a status");
    };
    assert_eq!(status.pid, std::process::id());
    let worker = &status.services[0];
    assert_eq!(worker.service_name, "worker");
    assert_eq!((worker.desired_count, worker.running_count), (2, 2));
    assert!(worker.steady_state);
    assert!(
        worker
            .events
            .iter()
            .any(|e| e.message == "(service worker) has reached a steady state.")
    );
    // The recovery state lists both task groups.
    let state = RunState::read(&run).unwrap().unwrap();
    assert_eq!(state.berth_pid, std::process::id());

    let answer = client
        .request(&Request::Scale {
            service: "worker".into(),
            count: 3,
        })
        .await
        .unwrap();
    assert_eq!(
        answer,
        Response::Scaled {
            service: "worker".into(),
            count: 3
        }
    );
    eventually("three running tasks", || {
        runtime.status().services[0].running_count == 3
    })
    .await;

    let answer = client
        .request(&Request::Scale {
            service: "nope".into(),
            count: 1,
        })
        .await
        .unwrap();
    assert!(matches!(answer, Response::Error { message } if message.contains("no service `nope`")));

    let pids: Vec<u32> = runtime.status().services[0]
        .tasks
        .iter()
        .filter_map(|t| t.task.pid)
        .collect();
    assert_eq!(pids.len(), 3);
    let answer = within("down", client.request(&Request::Down))
        .await
        .unwrap();
    assert_eq!(answer, Response::Stopped);
    for pid in pids {
        eventually("the task process to be gone", || process_gone(pid)).await;
    }
    let after = runtime.status();
    assert!(
        after.services[0]
            .tasks
            .iter()
            .all(|t| t.task.last_status == TaskStatus::Stopped)
    );
    assert!(!run.join("control.sock").exists());
    assert!(!run.join("state.json").exists());
}

#[tokio::test]
async fn a_bad_request_gets_an_error_answer() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let runtime = start_runtime(&run);
    let stream = tokio::net::UnixStream::connect(run.join("control.sock"))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    write.write_all(b"{\"op\":\"explode\"}\n").await.unwrap();
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .unwrap()
        .unwrap();
    let response: Response = serde_json::from_str(&line).unwrap();
    assert!(matches!(response, Response::Error { .. }));
    runtime.shutdown().await;
}
