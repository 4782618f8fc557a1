//! The control socket: permissions, status / scale / down round trips against a runtime.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use berth_local::cleanup::RunState;
use berth_local::control::{ControlClient, Request, Response};
use berth_local::runtime::{
    NoSecrets, RunStateFile, Runtime, RuntimeParts, StackLauncher, TaskTemplate,
};
use berth_local::service::{CircuitBreaker, DeploymentConfiguration, ServiceSettings};
use berth_local::task::TaskStatus;

use crate::support::{eventually, process_gone, within};

fn sleeper() -> TaskTemplate {
    TaskTemplate {
        executable: "/bin/sh".into(),
        args: vec!["-c".into(), "exec sleep 600".into()],
        working_dir: None,
        environment: vec![],
        secrets: vec![],
        stop_timeout: Duration::from_secs(5),
        health_check: None,
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
    }
}

/// A runtime of one service `worker` with two sleeping tasks.
pub fn start_runtime(run_dir: &std::path::Path) -> Runtime {
    let state_file = Arc::new(RunStateFile::new(run_dir.to_owned()));
    let launcher = StackLauncher {
        templates: [("worker:1".to_owned(), sleeper())].into_iter().collect(),
        secrets: Arc::new(NoSecrets),
        logs: None,
        state_file: Some(Arc::clone(&state_file)),
    };
    Runtime::start(RuntimeParts {
        stack: "test".into(),
        environment: "local".into(),
        url: "http://127.0.0.1:1".into(),
        run_dir: run_dir.to_owned(),
        state_file,
        services: vec![settings("worker", 2)],
        launcher: Arc::new(launcher),
        releases: None,
        router: None,
        local_differences: vec![],
        postgres: None,
        shutdown_steps: vec![],
        control_socket: true,
    })
    .unwrap()
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

#[tokio::test]
async fn a_task_is_in_the_recovery_file_as_soon_as_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let runtime = start_runtime(&run);
    within("steady state", runtime.wait_steady()).await;
    // Past the runtime's first rewrite of the file (its next is half a second later).
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A task started later (a scale-up, a replacement): the moment the scheduler shows it,
    // a berth killed now must leave it findable. The file is read at once, with no wait for
    // the runtime's periodic rewrite.
    runtime.scale("worker", 3).unwrap();
    let mut shown = Vec::new();
    eventually("the third task to show", || {
        shown = runtime.status().services[0]
            .tasks
            .iter()
            .map(|t| t.task.task_id.to_string())
            .collect();
        shown.len() == 3
    })
    .await;
    let recorded: Vec<String> = RunState::read(&run)
        .unwrap()
        .unwrap()
        .tasks
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    for task in &shown {
        assert!(recorded.contains(task), "{task} not in {recorded:?}");
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
