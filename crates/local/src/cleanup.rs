//! Recovery after berth itself was killed (SIGKILL, a crash, a power cut of the terminal).
//!
//! The running berth keeps `.berth/run/state.json` up to date: its own pid, every task's
//! process group and port, the PostgreSQL data directory. The next `berth up` or `berth down`
//! reads it: when that berth is gone, it kills the task groups that are still ours (same
//! process start time), stops the leftover PostgreSQL with `pg_ctl`, and removes the run files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::control::{SOCKET_NAME, ensure_private_dir};

/// The file name of the recovery state inside the run directory.
pub const STATE_FILE: &str = "state.json";

/// What a later berth needs to clean up after this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub berth_pid: u32,
    /// Start time of the berth process (clock ticks since boot, /proc/<pid>/stat field 22):
    /// tells a live berth from an unrelated process that reused its pid.
    pub berth_start_time: Option<u64>,
    pub listen: Option<String>,
    pub tasks: Vec<RunTask>,
    pub postgres: Option<RunPostgres>,
}

/// One task process group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTask {
    pub service: String,
    pub task_id: String,
    /// Leader pid, also the process group id.
    pub pid: u32,
    pub start_time: Option<u64>,
    pub port: u16,
}

/// A PostgreSQL server berth started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPostgres {
    pub data_dir: PathBuf,
    pub port: u16,
    /// Directory of `pg_ctl`.
    pub bin_dir: PathBuf,
    /// The user the server runs as, when berth (root) started it as another user.
    pub run_as: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("cannot read the run state {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the run state {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("berth is already running here (pid {pid}); use `berth status` or `berth down`")]
    AlreadyRunning { pid: u32 },
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The pid of the berth that was killed, when there was one.
    pub stale_berth: Option<u32>,
    /// Task process groups that were killed.
    pub killed_tasks: Vec<RunTask>,
    /// Task groups left alone: their pid now belongs to another process.
    pub skipped_tasks: Vec<RunTask>,
    pub stopped_postgres: bool,
}

impl RunState {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(STATE_FILE)
    }

    pub fn read(run_dir: &Path) -> Result<Option<Self>, CleanupError> {
        let path = Self::path(run_dir);
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(state) => Ok(Some(state)),
                Err(error) => {
                    // A torn write (berth killed mid-write): nothing usable to recover.
                    tracing::warn!(path = %path.display(), %error, "ignoring unreadable run state");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CleanupError::Read { path, source }),
        }
    }

    /// Writes atomically (temporary file, then rename) with mode 0600.
    pub fn write(&self, run_dir: &Path) -> Result<(), CleanupError> {
        let path = Self::path(run_dir);
        let write = || -> io::Result<()> {
            ensure_private_dir(run_dir)?;
            let tmp = run_dir.join(format!("{STATE_FILE}.tmp"));
            let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                file.write_all(&bytes)?;
            }
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| CleanupError::Write { path, source })
    }

    /// Removes the run files (state and socket) after a clean stop.
    pub fn remove(run_dir: &Path) {
        for name in [STATE_FILE, SOCKET_NAME] {
            let _ = fs::remove_file(run_dir.join(name));
        }
    }
}

/// Start time of a process (clock ticks since boot), or `None` when it does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state); starttime is field 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Whether the berth recorded in `state` is still alive.
fn berth_alive(state: &RunState) -> bool {
    match (process_start_time(state.berth_pid), state.berth_start_time) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Cleans up after a berth that is gone. Errors with [`CleanupError::AlreadyRunning`] when
/// the recorded berth is alive (and is not us).
pub fn recover(run_dir: &Path) -> Result<Recovery, CleanupError> {
    let Some(state) = RunState::read(run_dir)? else {
        // No state: at most a stale socket file.
        let _ = fs::remove_file(run_dir.join(SOCKET_NAME));
        return Ok(Recovery::default());
    };
    if state.berth_pid != std::process::id() && berth_alive(&state) {
        return Err(CleanupError::AlreadyRunning {
            pid: state.berth_pid,
        });
    }
    tracing::info!(
        pid = state.berth_pid,
        "cleaning up after a berth that was killed"
    );
    let mut recovery = Recovery {
        stale_berth: Some(state.berth_pid),
        ..Recovery::default()
    };
    for task in &state.tasks {
        if kill_task_group(task) {
            recovery.killed_tasks.push(task.clone());
        } else {
            recovery.skipped_tasks.push(task.clone());
        }
    }
    if let Some(postgres) = &state.postgres {
        recovery.stopped_postgres = stop_postgres(postgres);
    }
    RunState::remove(run_dir);
    Ok(recovery)
}

/// Kills a leftover task's process group when it is still ours. Returns whether it did.
fn kill_task_group(task: &RunTask) -> bool {
    let group = Pid::from_raw(task.pid as i32);
    match (process_start_time(task.pid), task.start_time) {
        // The leader's pid now belongs to another process: not ours.
        (Some(now), Some(then)) if now != then => return false,
        // The leader is gone: a group with its id can only be what it left behind (a
        // process group id is not reused while the group has members).
        _ => {}
    }
    if killpg(group, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return true;
    }
    // A short grace for a clean exit, then the rest is killed.
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        if killpg(group, None) == Err(Errno::ESRCH) {
            return true;
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    true
}

/// `pg_ctl stop -m fast` on a leftover server; whether it was running.
fn stop_postgres(postgres: &RunPostgres) -> bool {
    if !postgres.data_dir.join("postmaster.pid").exists() {
        return false;
    }
    let pg_ctl = postgres.bin_dir.join("pg_ctl");
    let mut command = match &postgres.run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(&pg_ctl);
            c
        }
        None => Command::new(&pg_ctl),
    };
    command
        .arg("stop")
        .arg("-D")
        .arg(&postgres.data_dir)
        .args(["-m", "fast", "-w"]);
    match command.output() {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            tracing::warn!(
                stderr = %String::from_utf8_lossy(&output.stderr).trim(),
                "pg_ctl stop of the leftover PostgreSQL failed"
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, "cannot run pg_ctl to stop the leftover PostgreSQL");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process_is_stable() {
        let me = std::process::id();
        let first = process_start_time(me).expect("our own start time");
        assert_eq!(process_start_time(me), Some(first));
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let state = RunState {
            berth_pid: 42,
            berth_start_time: Some(7),
            listen: Some("127.0.0.1:8080".into()),
            tasks: vec![RunTask {
                service: "backend".into(),
                task_id: "a".repeat(32),
                pid: 43,
                start_time: Some(8),
                port: 4000,
            }],
            postgres: None,
        };
        state.write(&run).unwrap();
        assert_eq!(RunState::read(&run).unwrap(), Some(state));
        RunState::remove(&run);
        assert_eq!(RunState::read(&run).unwrap(), None);
    }
}
