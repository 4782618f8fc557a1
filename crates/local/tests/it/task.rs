//! Task processes: start, environment, stop with SIGTERM then SIGKILL, exit codes, stop
//! codes and reasons, container health checks.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use berth_local::task::{
    ContainerHealthCheck, DesiredStatus, HealthStatus, OutputSink, OutputStream, SecretValue,
    StopCode, Task, TaskId, TaskOutput, TaskSpec, TaskStatus, TaskUser, free_port,
};

use crate::support::{eventually, process_gone, read_trimmed, shell_task, within};

#[tokio::test]
async fn task_gets_its_port_environment_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let mut spec = shell_task(&format!(
        "echo \"$PORT $GREETING $DB_PASSWORD\" > {}.tmp && mv {0}.tmp {0}; exec sleep 600",
        out.display()
    ));
    spec.env = vec![("GREETING".into(), "hello".into())];
    spec.secrets = vec![("DB_PASSWORD".into(), SecretValue::new("s3cr3t"))];
    let port = free_port().unwrap();
    let task = Task::start(TaskId::random(), spec, port);

    assert_eq!(task.snapshot().last_status, TaskStatus::Activating);
    assert!(task.snapshot().pid.is_some());
    task.mark_running();
    assert_eq!(task.snapshot().last_status, TaskStatus::Running);

    eventually("the task to write its environment", || {
        read_trimmed(&out).is_some()
    })
    .await;
    assert_eq!(read_trimmed(&out).unwrap(), format!("{port} hello s3cr3t"));
    task.stop(StopCode::UserInitiated, "test over").await;
}

#[tokio::test]
async fn task_id_looks_like_an_ecs_task_id() {
    let id = TaskId::random();
    assert_eq!(id.as_str().len(), 32);
    assert!(
        id.as_str()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[tokio::test]
async fn stop_sends_sigterm_which_a_task_may_honour() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut spec = shell_task(&format!(
        "trap 'exit 0' TERM; touch {}; while true; do sleep 0.05; done",
        ready.display()
    ));
    spec.stop_timeout = Duration::from_secs(120);
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    task.mark_running();
    // The trap must be set before the signal comes.
    eventually("the trap to be set", || ready.exists()).await;
    let stopped = within(
        "the task to stop",
        task.stop(StopCode::UserInitiated, "stopped by the test"),
    )
    .await;

    assert_eq!(stopped.last_status, TaskStatus::Stopped);
    assert_eq!(stopped.desired_status, DesiredStatus::Stopped);
    // The trap ran: a clean exit, not a SIGKILL.
    assert_eq!(stopped.exit_code, Some(0));
    assert_eq!(stopped.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("stopped by the test")
    );
    assert!(stopped.stopping_at.is_some() && stopped.stopped_at.is_some());
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut spec = shell_task(&format!(
        "trap '' TERM; touch {}; while true; do sleep 0.05; done",
        ready.display()
    ));
    spec.stop_timeout = Duration::from_millis(300);
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    task.mark_running();
    eventually("the trap to be set", || ready.exists()).await;
    let stopped = within(
        "the task to be killed",
        task.stop(StopCode::ServiceSchedulerInitiated, "scaling"),
    )
    .await;

    // 128 + SIGKILL (S4.8).
    assert_eq!(stopped.exit_code, Some(137));
    assert_eq!(stopped.stop_code, Some(StopCode::ServiceSchedulerInitiated));
}

#[tokio::test]
async fn an_exiting_process_is_an_essential_container_exit() {
    let task = Task::start(TaskId::random(), shell_task("exit 3"), free_port().unwrap());
    let stopped = within("the task to exit", task.stopped()).await;

    assert_eq!(stopped.exit_code, Some(3));
    assert_eq!(stopped.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    // Stopping a stopped task changes nothing.
    let again = task.stop(StopCode::UserInitiated, "late").await;
    assert_eq!(again.stop_code, Some(StopCode::EssentialContainerExited));
}

#[tokio::test]
async fn a_missing_executable_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let spec = berth_local::task::TaskSpec::new(dir.path().join("no-such-binary"));
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    let snapshot = task.snapshot();

    assert_eq!(snapshot.last_status, TaskStatus::Stopped);
    assert_eq!(snapshot.stop_code, Some(StopCode::TaskFailedToStart));
    assert!(
        snapshot
            .stopped_reason
            .unwrap()
            .starts_with("CannotStartContainerError:")
    );
}

#[tokio::test]
async fn stop_reaches_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = format!(
        "sleep 600 & echo $! > {0}.tmp && mv {0}.tmp {0}; wait",
        pidfile.display()
    );
    let task = Task::start(TaskId::random(), shell_task(&script), free_port().unwrap());
    eventually("the grandchild's pid", || read_trimmed(&pidfile).is_some()).await;
    let grandchild: u32 = read_trimmed(&pidfile).unwrap().parse().unwrap();
    assert!(!process_gone(grandchild));

    within("the stop", task.stop(StopCode::UserInitiated, "test")).await;
    eventually("the grandchild to be gone", || process_gone(grandchild)).await;
}

#[tokio::test]
async fn container_health_check_reports_healthy_then_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("healthy");
    std::fs::write(&marker, "").unwrap();
    let mut spec = shell_task("exec sleep 600");
    spec.env = vec![("MARKER".into(), marker.display().to_string())];
    spec.health_check = Some(ContainerHealthCheck {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        retries: 2,
        ..ContainerHealthCheck::new("test -f \"$MARKER\" && test -n \"$PORT\"")
    });
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());
    assert_eq!(task.snapshot().health_status, HealthStatus::Unknown);

    let mut rx = task.subscribe();
    within(
        "HEALTHY",
        rx.wait_for(|s| s.health_status == HealthStatus::Healthy),
    )
    .await
    .unwrap();
    std::fs::remove_file(&marker).unwrap();
    within(
        "UNHEALTHY",
        rx.wait_for(|s| s.health_status == HealthStatus::Unhealthy),
    )
    .await
    .unwrap();
    task.stop(StopCode::UserInitiated, "test").await;
}

/// Collects a task's output lines, as a log stream would.
#[derive(Default)]
struct CollectedLines(std::sync::Mutex<Vec<(OutputStream, String)>>);

impl OutputSink for CollectedLines {
    fn line(&self, stream: OutputStream, line: &str) {
        self.0.lock().unwrap().push((stream, line.to_owned()));
    }
}

#[tokio::test]
async fn output_that_is_not_utf8_is_replaced_and_reading_goes_on() {
    // A reader that gave up on the first invalid byte would lose every later line, and leave
    // a chatty task blocked on a full pipe.
    let sink = Arc::new(CollectedLines::default());
    let mut spec = shell_task(
        "printf 'before\\n\\377\\376 latin-1 \\351\\n'; echo after; echo oops >&2; exec sleep 600",
    );
    spec.output = TaskOutput::Lines(sink.clone());
    let task = Task::start(TaskId::random(), spec, free_port().unwrap());

    eventually("the task's lines to arrive", || {
        sink.0.lock().unwrap().len() == 4
    })
    .await;
    let mut lines = sink.0.lock().unwrap().clone();
    lines.sort_by_key(|(stream, _)| *stream == OutputStream::Stderr);
    assert_eq!(
        lines,
        vec![
            (OutputStream::Stdout, "before".to_owned()),
            (
                OutputStream::Stdout,
                "\u{fffd}\u{fffd} latin-1 \u{fffd}".to_owned()
            ),
            (OutputStream::Stdout, "after".to_owned()),
            (OutputStream::Stderr, "oops".to_owned()),
        ]
    );
    task.stop(StopCode::UserInitiated, "test over").await;
}

/// A task listens where the runtime tells it (`HOST`): loopback only, so nothing on the
/// network reaches it past the load balancer. The listener here is a small program that
/// binds `$HOST:$PORT` as the apps do; it runs as the account tasks run as.
#[tokio::test]
async fn a_task_told_its_host_is_reachable_on_loopback_only() {
    const LISTENER: &str = "import os, socket\n\
        s = socket.socket()\n\
        s.bind((os.environ['HOST'], int(os.environ['PORT'])))\n\
        s.listen()\n\
        while True:\n    s.accept()[0].close()\n";
    let mut spec = TaskSpec::new("/usr/bin/python3");
    spec.args = vec!["-c".into(), LISTENER.into()];
    spec.user = TaskUser::for_this_berth().unwrap();
    let port = free_port().unwrap();
    let task = Task::start(TaskId::random(), spec, port);
    eventually("the task to listen", || {
        std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
    .await;
    assert_eq!(
        listening_addresses(port),
        [Ipv4Addr::LOCALHOST],
        "the listening socket's address (/proc/net/tcp)"
    );
    if let Some(address) = non_loopback_address() {
        let error = std::net::TcpStream::connect((address, port)).unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{address}"
        );
    }
    task.stop(StopCode::UserInitiated, "test over").await;
}

/// The IPv4 addresses listening on `port`, from `/proc/net/tcp` (`0100007F:1F90 ... 0A`).
fn listening_addresses(port: u16) -> Vec<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (ip, listen_port) = fields.get(1)?.split_once(':')?;
            let ip = Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes());
            (u16::from_str_radix(listen_port, 16).ok()? == port && fields.get(3)? == &"0A")
                .then_some(ip)
        })
        .collect()
}

/// This machine's address on its default route, if it has one (a UDP connect sends nothing).
fn non_loopback_address() -> Option<Ipv4Addr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}
