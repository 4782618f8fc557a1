//! Accept loops out of file descriptors: the balancer's and the control socket's pause and
//! log one line per window instead of spinning (once: 15.7 million lines in 22 s), and
//! serve again when descriptors are back.
//!
//! Running out of descriptors is process-wide, so the scenario runs in a child process: this
//! test binary again, with only this test selected and `CHILD` set.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use berth_local::balancer::{Balancer, Forward, ListenerConfig, ListenerLimits, TargetGroupConfig};
use berth_local::control::{
    ControlClient, ControlHandler, ControlServer, DeployStarted, Request, Response, SOCKET_NAME,
    StatusReport, WatchedService,
};
use berth_local::service::{BoxFuture, Deployment};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::support::within;

const CHILD: &str = "BERTH_TEST_ACCEPT_CHILD";
const TEST_NAME: &str =
    "accept::accept_loops_out_of_descriptors_pause_log_once_per_window_and_recover";
/// How long the child keeps its descriptors exhausted: an observation window, in which a
/// loop without back-off writes thousands of lines.
const EXHAUSTED_FOR: Duration = Duration::from_secs(2);

#[test]
fn accept_loops_out_of_descriptors_pause_log_once_per_window_and_recover() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{log}"
    );
    for what in ["load balancer", "control socket"] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("{what}: cannot accept a connection")))
            .collect();
        // The first failure, then (the window being 10 s) only the summary when accepting
        // works again.
        assert_eq!(lines.len(), 2, "{what}:\n{}", lines.join("\n"));
        assert!(lines[0].contains("Too many open files"), "{}", lines[0]);
        assert!(lines[1].contains("now accepting again"), "{}", lines[1]);
        let times: u64 = lines[1]
            .split("(repeated ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {}", lines[1]));
        // It kept trying (paused, not given up) while exhausted.
        assert!(times >= 2, "{}", lines[1]);
    }
}

/// The child: exhausts its descriptors with a connection waiting at each listener, then
/// gives them back and expects both connections to be served.
fn child() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let lb = Balancer::bind_with_limits(
            "127.0.0.1:0".parse().unwrap(),
            ListenerConfig {
                rules: vec![],
                default_action: Forward::to("web"),
                target_groups: vec![TargetGroupConfig::new("web")],
                idle_timeout: Duration::from_secs(60),
            },
            ListenerLimits {
                workers: 1,
                max_connections: 100,
            },
        )
        .await
        .unwrap();
        let control = ControlServer::bind(dir.path()).unwrap();
        let stop = CancellationToken::new();
        let serving = tokio::spawn(control.serve(Arc::new(Idle), stop.clone()));

        // The clients' sockets exist before the descriptors run out, so connecting needs none
        // (freeing one for a client instead raced with the balancer's accept retry, which
        // could take it first: the client then got EMFILE).
        let http_socket = tokio::net::TcpSocket::new_v4().unwrap();
        let control_socket = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let hogs = exhaust_descriptors();
        let mut http = http_socket.connect(lb.local_addr()).await.unwrap();
        http.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let address = UnixAddr::new(&dir.path().join(SOCKET_NAME)).unwrap();
        connect(control_socket.as_raw_fd(), &address).unwrap();
        let control_client = tokio::spawn(status(control_socket));
        tokio::time::sleep(EXHAUSTED_FOR).await;
        drop(hogs);

        // Served once descriptors are back: a 503 (no target) and a status answer.
        let mut response = String::new();
        within("the HTTP response", http.read_to_string(&mut response))
            .await
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        let answer = within("the control answer", control_client).await.unwrap();
        assert!(matches!(answer, Response::Status { .. }), "{answer:?}");
        stop.cancel();
        serving.await.unwrap();
        lb.shutdown().await;
    });
}

/// Opens `/dev/null` until the process is out of descriptors (under a lowered soft limit,
/// so that it takes a few hundred files, not the hard limit's worth).
fn exhaust_descriptors() -> Vec<File> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 512, hard).unwrap();
    let mut hogs = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => hogs.push(file),
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(nix::libc::EMFILE), "{error}");
                return hogs;
            }
        }
    }
}

async fn status(connected: OwnedFd) -> Response {
    let stream = std::os::unix::net::UnixStream::from(connected);
    stream.set_nonblocking(true).unwrap();
    let stream = tokio::net::UnixStream::from_std(stream).unwrap();
    let mut client = ControlClient::from_stream(stream);
    client.request(&Request::Status).await.unwrap()
}

/// A control handler with nothing to run.
struct Idle;

impl ControlHandler for Idle {
    fn status(&self) -> StatusReport {
        StatusReport {
            stack: "test".into(),
            environment: "local".into(),
            url: "http://127.0.0.1:1".into(),
            pid: std::process::id(),
            started_at: chrono::Utc::now(),
            services: vec![],
            target_groups: vec![],
            local_differences: vec![],
            database: None,
        }
    }

    fn scale(&self, _service: &str, _count: u32) -> Result<(), String> {
        Err("nothing to scale".into())
    }

    fn down(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn deploy<'a>(
        &'a self,
        _service: &'a str,
        _stack_file: &'a Path,
        _image: Option<&'a str>,
        _strategy: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeployStarted, String>> {
        Box::pin(async { Err("nothing to deploy".into()) })
    }

    fn rollback<'a>(&'a self, _service: &'a str) -> BoxFuture<'a, Result<DeployStarted, String>> {
        Box::pin(async { Err("nothing to roll back".into()) })
    }

    fn deployments(&self, _service: &str) -> Result<Vec<Deployment>, String> {
        Ok(vec![])
    }

    fn watch<'a>(
        &'a self,
        _service: &'a str,
        _since: u64,
    ) -> BoxFuture<'a, Result<WatchedService, String>> {
        Box::pin(async { Err("nothing to watch".into()) })
    }
}
