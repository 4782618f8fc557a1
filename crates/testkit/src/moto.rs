//! moto in server mode on 127.0.0.1: the AWS endpoint of the AWS engine's tests.
//!
//! Started with `MOTO_IAM_LOAD_MANAGED_POLICIES=true` (so AWS managed policies such as
//! `AmazonECSTaskExecutionRolePolicy` exist) and `MOTO_ECS_SERVICE_RUNNING=2` (services
//! report two running tasks, the example stack's desired count, so "services stable"
//! waits end). `.ci/run` installs it (`pip install 'moto[server]'`).

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{free_port, http_get, http_request};

/// How long moto gets to answer after it was spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Running tasks moto reports for every ECS service.
pub const MOTO_RUNNING_TASKS: u32 = 2;

/// A moto server, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    logs: TempDir,
}

impl Moto {
    /// Starts `moto_server` on a free port and waits until it answers.
    ///
    /// # Panics
    /// When `moto_server` is not installed or never answers; the message says how to fix it.
    pub fn start() -> Moto {
        let port = free_port();
        let logs = tempfile::Builder::new()
            .prefix("berth-moto-")
            .tempdir()
            .expect("create a directory for moto's log");
        let log = File::create(logs.path().join("moto.log")).expect("create moto's log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_ECS_SERVICE_RUNNING", MOTO_RUNNING_TASKS.to_string())
            // Each server records (when told to) into a file of its own.
            .env("MOTO_RECORDER_FILEPATH", logs.path().join("recording"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): install it with `pip install 'moto[server]'`"
                )
            });
        let mut moto = Moto { child, port, logs };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if http_get(port, "/moto-api/").is_some() {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status}:\n{}", moto.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within {STARTUP_TIMEOUT:?}:\n{}",
                moto.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`: the endpoint URL for the SDK (`AWS_ENDPOINT_URL`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Empties every service's state.
    pub fn reset(&self) {
        let response = http_request(self.port, "POST", "/moto-api/reset", &[], b"")
            .expect("moto answers /moto-api/reset");
        assert_eq!(response.status, 200, "moto reset: {}", response.text());
    }

    /// Starts recording the requests moto receives (`/moto-api/recorder/`), for a test to
    /// read what was sent where moto does not answer with it (ECS's deployment
    /// configuration).
    pub fn start_recording(&self) {
        let response = http_request(
            self.port,
            "POST",
            "/moto-api/recorder/start-recording",
            &[],
            b"",
        )
        .expect("moto answers /moto-api/recorder/start-recording");
        assert_eq!(response.status, 200, "moto recorder: {}", response.text());
    }

    /// The requests recorded since [`Moto::start_recording`]: one JSON object a line
    /// (`headers`, `method`, `url`, `body`, which is base64 when `body_encoded`).
    pub fn recording(&self) -> String {
        let response = http_request(
            self.port,
            "GET",
            "/moto-api/recorder/download-recording",
            &[],
            b"",
        )
        .expect("moto answers /moto-api/recorder/download-recording");
        assert_eq!(response.status, 200, "moto recorder: {}", response.text());
        response.text()
    }

    /// moto's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("moto.log")).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
