//! Recovery after a berth was killed: leftover task groups are stopped when they are still
//! ours (given their stop timeout to exit), unrelated processes are left alone, a live berth
//! is not touched.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_local::cleanup::{
    CleanupError, RunState, RunTask, left_behind, process_start_time, recover,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::support::{eventually, process_gone};

/// A process group like a task's: `sh` leading, a `sleep` under it.
fn leftover_group() -> std::process::Child {
    Command::new("/bin/sh")
        .args(["-c", "sleep 600 & wait"])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills a group a test started and reaps its leader.
fn kill_group(mut leader: std::process::Child) {
    let _ = killpg(Pid::from_raw(leader.id() as i32), Signal::SIGKILL);
    let _ = leader.wait();
}

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn task(pid: u32, start_time: Option<u64>) -> RunTask {
    RunTask {
        service: "backend".into(),
        task_id: "0".repeat(32),
        pid,
        start_time,
        port: 1,
        stop_timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn leftovers_of_a_killed_berth_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut ours = leftover_group();
    let not_ours = leftover_group();
    let unknown = leftover_group();
    let state = RunState {
        berth_pid: dead_pid(),
        berth_start_time: Some(1),
        listen: None,
        tasks: vec![
            task(ours.id(), process_start_time(ours.id())),
            // Same pid, other start time: the pid was reused by something else.
            task(
                not_ours.id(),
                Some(process_start_time(not_ours.id()).unwrap() + 1),
            ),
            // A live leader whose start time was never recorded: not provably ours.
            task(unknown.id(), None),
        ],
        postgres: None,
        deployments: vec![],
    };
    state.write(&run).unwrap();
    std::fs::write(run.join("control.sock"), "").unwrap();

    // What the user is told the wait is for: only the group that is provably ours.
    let left: Vec<u32> = left_behind(&run).iter().map(|task| task.pid).collect();
    assert_eq!(left, [ours.id()]);
    let recovery = recover(&run).unwrap();
    assert_eq!(recovery.stale_berth, Some(state.berth_pid));
    assert_eq!(recovery.killed_tasks.len(), 1);
    assert_eq!(recovery.skipped_tasks.len(), 2);
    let _ = ours.wait();
    eventually("our group to be gone", || process_gone(ours.id())).await;
    assert!(!process_gone(not_ours.id()));
    assert!(!process_gone(unknown.id()));
    assert!(!run.join("state.json").exists());
    assert!(!run.join("control.sock").exists());

    kill_group(not_ours);
    kill_group(unknown);
}

#[tokio::test]
async fn a_leftover_task_gets_its_stop_timeout_to_exit_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let ready = dir.path().join("ready");
    let marker = dir.path().join("clean-exit");
    // Takes longer than the second recovery used to give before SIGKILL, and much less
    // than its stop timeout.
    let script = format!(
        "trap 'sleep 1.5; touch {marker}; exit 0' TERM; touch {ready}; sleep 600 & wait",
        marker = marker.display(),
        ready = ready.display(),
    );
    let mut leftover = Command::new("/bin/sh")
        .args(["-c", &script])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the leftover to trap SIGTERM", || ready.exists()).await;
    let state = RunState {
        berth_pid: dead_pid(),
        berth_start_time: Some(1),
        tasks: vec![RunTask {
            stop_timeout: Duration::from_secs(20),
            ..task(leftover.id(), process_start_time(leftover.id()))
        }],
        ..RunState::default()
    };
    state.write(&run).unwrap();

    let recovery = recover(&run).unwrap();
    assert_eq!(recovery.killed_tasks.len(), 1);
    assert!(
        marker.exists(),
        "the leftover was killed before it could exit by itself"
    );
    let status = leftover.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_live_berth_is_not_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let other_berth = leftover_group();
    let its_task = leftover_group();
    let state = RunState {
        berth_pid: other_berth.id(),
        berth_start_time: process_start_time(other_berth.id()),
        // A task of that berth, provably its own: it must not count as left behind.
        tasks: vec![task(its_task.id(), process_start_time(its_task.id()))],
        ..RunState::default()
    };
    state.write(&run).unwrap();
    assert!(
        left_behind(&run).is_empty(),
        "a live berth left nothing behind"
    );
    let error = recover(&run).unwrap_err();
    assert!(matches!(error, CleanupError::AlreadyRunning { pid } if pid == other_berth.id()));
    assert!(run.join("state.json").exists());
    kill_group(other_berth);
    kill_group(its_task);
}

#[tokio::test]
async fn nothing_to_recover_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(recover(dir.path()).unwrap(), Default::default());
}
