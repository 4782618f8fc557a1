//! A workspace binary started for a test, with its own port and environment.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{bin_path, free_port, http_get};

/// How long a freshly spawned server gets to answer its health path.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A spawned server process. Its stdout and stderr go to files (see [`Server::logs`]);
/// it is killed on drop.
pub struct Server {
    child: Child,
    port: u16,
    logs: TempDir,
}

impl Server {
    /// Spawn the workspace binary `name` with `PORT` set to a free port plus `env`, and wait
    /// until `GET health_path` answers 200.
    ///
    /// # Panics
    /// When the binary is missing, exits early, or never gets healthy; the message carries
    /// its output.
    pub fn spawn<K, V>(
        name: &str,
        env: impl IntoIterator<Item = (K, V)>,
        health_path: &str,
    ) -> Server
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let server = Self::spawn_unchecked(&bin_path(name), env);
        server.wait_until_ok(health_path);
        server
    }

    /// Spawn without waiting for anything (for tests of start-up failures).
    pub fn spawn_unchecked<K, V>(program: &Path, env: impl IntoIterator<Item = (K, V)>) -> Server
    where
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let port = free_port();
        let logs = tempfile::Builder::new()
            .prefix("berth-server-")
            .tempdir()
            .expect("create a directory for the server's logs");
        let stdout = File::create(logs.path().join("stdout")).expect("create stdout file");
        let stderr = File::create(logs.path().join("stderr")).expect("create stderr file");
        let child = Command::new(program)
            .env("PORT", port.to_string())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", program.display()));
        Server { child, port, logs }
    }

    /// Poll `GET path` until it answers 200.
    ///
    /// # Panics
    /// When the process exits first or the start-up timeout passes.
    pub fn wait_until_ok(&self, path: &str) {
        self.wait_for_status(path, 200);
    }

    /// Poll `GET path` until it answers `status`.
    ///
    /// # Panics
    /// When the process exits first or the start-up timeout passes.
    pub fn wait_for_status(&self, path: &str, status: u16) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last = None;
        loop {
            match http_get(self.port, path) {
                Some(response) if response.status == status => return,
                other => last = other.map(|r| r.status).or(last),
            }
            assert!(
                Instant::now() < deadline,
                "GET {path} never answered {status} (last: {last:?}); logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send a signal by name (`TERM`, `INT`, `KILL`) through `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    /// Wait for the process to exit, at most `timeout`; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default()
    }

    /// Wait until a line the process wrote to stdout satisfies `matches`, at most `timeout`
    /// (a bound for a busy machine, not an expected duration); returns that line.
    ///
    /// # Panics
    /// When no such line appears in time; the message carries the logs.
    pub fn wait_for_line(&self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.stdout().lines().find(|line| matches(line)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no such line within {timeout:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default()
    }

    /// stdout and stderr, labelled, for assertion messages.
    pub fn logs(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }

    /// Directory holding the `stdout` and `stderr` files.
    pub fn log_dir(&self) -> PathBuf {
        self.logs.path().to_path_buf()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
