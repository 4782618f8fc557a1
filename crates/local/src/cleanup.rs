//! Recovery after berth itself was killed (SIGKILL, a crash, a power cut of the terminal).
//!
//! The running berth keeps `.berth/run/state.json` up to date: its own pid, every task's
//! process group and port, the PostgreSQL data directory. The next `berth up` or `berth down`
//! reads it: when that berth is gone, it stops the task groups that are still ours (same
//! process start time) as berth would have: SIGTERM, then SIGKILL after each task's stop
//! timeout, all at once. Then it stops the leftover PostgreSQL with `pg_ctl` and removes the
//! run files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::control::{SOCKET_NAME, ensure_private_dir};
use crate::task::DEFAULT_STOP_TIMEOUT;

/// How often recovery looks whether the leftover task groups have exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

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
    /// Rollouts in progress, so that the next `berth up` can say which one a killed berth
    /// interrupted.
    #[serde(default)]
    pub deployments: Vec<RunDeployment>,
}

/// A deployment in progress: a new revision replacing others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDeployment {
    /// The ECS service name.
    pub service: String,
    pub deployment_id: String,
    /// The revision it rolled out (`<family>:<n>`).
    pub task_definition: String,
    /// The revisions it was replacing.
    pub replacing: Vec<String>,
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
    /// Time between SIGTERM and SIGKILL (the task's `stopTimeout`). State files written
    /// before berth recorded it get ECS's default.
    #[serde(
        rename = "stopTimeoutMs",
        with = "millis",
        default = "default_stop_timeout"
    )]
    pub stop_timeout: Duration,
}

fn default_stop_timeout() -> Duration {
    DEFAULT_STOP_TIMEOUT
}

/// A [`Duration`] as whole milliseconds in the state file.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
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
    /// Task process groups that were stopped (SIGTERM, SIGKILL after their stop timeout).
    pub killed_tasks: Vec<RunTask>,
    /// Task groups left alone: their pid now belongs to another process.
    pub skipped_tasks: Vec<RunTask>,
    pub stopped_postgres: bool,
    /// The deployments the killed berth was in the middle of.
    pub interrupted: Vec<RunDeployment>,
}

impl RunState {
    /// This berth (pid and start time) with nothing recorded yet.
    pub fn of_this_berth() -> Self {
        let pid = std::process::id();
        Self {
            berth_pid: pid,
            berth_start_time: process_start_time(pid),
            ..Self::default()
        }
    }

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
    stat_field(pid, 22)
}

/// Field `field` (numbered as in proc(5)) of `/proc/<pid>/stat`, or `None` when the process
/// does not exist or is a zombie (it has exited and only waits to be reaped).
fn stat_field<T: std::str::FromStr>(pid: u32, field: usize) -> Option<T> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    // rest starts at field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(field.checked_sub(3)?)?.parse().ok()
}

/// Whether the berth recorded in `state` is still alive.
fn berth_alive(state: &RunState) -> bool {
    match (process_start_time(state.berth_pid), state.berth_start_time) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Whether what `state` records is left for [`recover`] to stop: its berth is gone (or is
/// us, cleaning up after ourselves).
fn abandoned(state: &RunState) -> bool {
    state.berth_pid == std::process::id() || !berth_alive(state)
}

/// The task groups a berth that is gone left behind and [`recover`] would stop (none when
/// the recorded berth is alive, or nothing is recorded): for saying what the wait is for.
pub fn left_behind(run_dir: &Path) -> Vec<RunTask> {
    match RunState::read(run_dir) {
        Ok(Some(state)) if abandoned(&state) => {
            state.tasks.into_iter().filter(still_ours).collect()
        }
        _ => Vec::new(),
    }
}

/// What a berth that was killed left running: what `berth status` reports instead of
/// "not running".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// The pid of the berth that is gone.
    pub berth_pid: u32,
    /// Its task groups that still have a live process.
    pub tasks: Vec<RunTask>,
    /// The pid of its PostgreSQL server, still running.
    pub postgres_pid: Option<u32>,
}

/// What the recorded berth, now gone, left running (`None` when it is alive, nothing is
/// recorded, or nothing it started still runs).
pub fn leftovers(run_dir: &Path) -> Option<Leftovers> {
    let state = RunState::read(run_dir).ok()??;
    if berth_alive(&state) {
        return None;
    }
    let tasks: Vec<RunTask> = state
        .tasks
        .into_iter()
        .filter(|task| still_ours(task) && group_alive(Pid::from_raw(task.pid as i32)))
        .collect();
    let postgres_pid = state
        .postgres
        .and_then(|postgres| crate::database::running_postmaster(&postgres.data_dir));
    (!tasks.is_empty() || postgres_pid.is_some()).then_some(Leftovers {
        berth_pid: state.berth_pid,
        tasks,
        postgres_pid,
    })
}

/// What to tell the user while [`recover`] waits for `count` leftover task groups.
pub fn leftovers_message(count: usize, longest_stop_timeout: Duration) -> String {
    format!(
        "the berth that ran this stack is gone: stopping the {count} task(s) it left \
         (each gets its stop timeout, at most {}s)",
        longest_stop_timeout.as_secs()
    )
}

/// Cleans up after a berth that is gone. Errors with [`CleanupError::AlreadyRunning`] when
/// the recorded berth is alive (and is not us).
pub fn recover(run_dir: &Path) -> Result<Recovery, CleanupError> {
    let Some(state) = RunState::read(run_dir)? else {
        // No state: at most a stale socket file.
        let _ = fs::remove_file(run_dir.join(SOCKET_NAME));
        return Ok(Recovery::default());
    };
    if !abandoned(&state) {
        return Err(CleanupError::AlreadyRunning {
            pid: state.berth_pid,
        });
    }
    tracing::info!(
        pid = state.berth_pid,
        "cleaning up after a berth that was killed"
    );
    let (ours, not_ours): (Vec<RunTask>, Vec<RunTask>) =
        state.tasks.into_iter().partition(still_ours);
    stop_task_groups(&ours);
    let stopped_postgres = state.postgres.as_ref().is_some_and(stop_postgres);
    RunState::remove(run_dir);
    Ok(Recovery {
        stale_berth: Some(state.berth_pid),
        killed_tasks: ours,
        skipped_tasks: not_ours,
        stopped_postgres,
        interrupted: state.deployments,
    })
}

/// Whether a leftover task's process group is still the one berth started.
fn still_ours(task: &RunTask) -> bool {
    match (process_start_time(task.pid), task.start_time) {
        // The leader's pid now belongs to another process: not ours.
        (Some(now), Some(then)) => now == then,
        // A live leader whose start time was never recorded cannot be proven ours.
        (Some(_), None) => false,
        // The leader is gone: a group with its id can only be what it left behind (a
        // process group id is not reused while the group has members).
        (None, _) => true,
    }
}

/// Stops leftover task groups as berth would have stopped the tasks: SIGTERM to every group
/// at once, then SIGKILL to each group still there after its own stop timeout. Returns as
/// soon as every group has exited, so the whole wait is at most the longest stop timeout.
fn stop_task_groups(tasks: &[RunTask]) {
    let now = Instant::now();
    let mut pending: Vec<(Pid, Instant)> = tasks
        .iter()
        .map(|task| (Pid::from_raw(task.pid as i32), now + task.stop_timeout))
        // ESRCH: the group is gone already.
        .filter(|&(group, _)| killpg(group, Signal::SIGTERM) != Err(Errno::ESRCH))
        .collect();
    while !pending.is_empty() {
        std::thread::sleep(EXIT_POLL);
        let now = Instant::now();
        pending.retain(|&(group, deadline)| {
            if !group_alive(group) {
                return false;
            }
            if now < deadline {
                return true;
            }
            tracing::info!(pgid = %group, "leftover task ignored SIGTERM for its stop timeout: SIGKILL");
            let _ = killpg(group, Signal::SIGKILL);
            false
        });
    }
}

/// Whether any process of the group is alive. Zombies do not count: they have exited and
/// only wait for their parent (possibly not us) to reap them.
fn group_alive(group: Pid) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        // No /proc to look into: ask the kernel, which counts zombies as alive.
        return killpg(group, None).is_ok();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        // Field 5: the process group.
        .any(|pid| stat_field::<i32>(pid, 5) == Some(group.as_raw()))
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
                stop_timeout: Duration::from_secs(90),
            }],
            deployments: vec![RunDeployment {
                service: "backend-service".into(),
                deployment_id: "ecs-svc/1234567890123456789".into(),
                task_definition: "backend-task:2".into(),
                replacing: vec!["backend-task:1".into()],
            }],
            postgres: None,
        };
        state.write(&run).unwrap();
        assert_eq!(RunState::read(&run).unwrap(), Some(state));
        RunState::remove(&run);
        assert_eq!(RunState::read(&run).unwrap(), None);
    }

    #[test]
    fn a_task_recorded_without_stop_timeout_gets_the_default() {
        let json = r#"{"service":"backend","taskId":"a","pid":43,"startTime":8,"port":4000}"#;
        let task: RunTask = serde_json::from_str(json).unwrap();
        assert_eq!(task.stop_timeout, DEFAULT_STOP_TIMEOUT);
    }
}
