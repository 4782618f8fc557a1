//! The task's OS process: spawning it in its own process group, relaying its output, and
//! stopping it (SIGTERM to the group, SIGKILL after the stop timeout).

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncRead;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::health::HealthTracker;
use super::state::{StopCode, TaskSnapshot, TaskStatus, reasons};
use super::{OutputSink, OutputStream, StopRequest, TaskOutput, TaskSpec};

/// A free TCP port on 127.0.0.1, chosen by the kernel (bind to port 0, read it, release it).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

pub(super) struct SpawnedChild {
    pub(super) pid: u32,
    child: Child,
}

pub(super) fn spawn(spec: &TaskSpec, port: u16) -> io::Result<SpawnedChild> {
    if let Some(container) = &spec.container {
        let mut command = Command::new(&container.engine.program);
        command
            .args(container.run_args(spec, port))
            .stdin(Stdio::null())
            .process_group(0);
        if container.engine_secrets.is_none() {
            // The secrets' values: `--env NAME` makes the engine read them from here.
            command.envs(
                spec.secrets
                    .iter()
                    .map(|(name, value)| (name.clone(), value.expose().to_owned())),
            );
        }
        return spawn_command(command, spec, None);
    }
    // As another account, the task is started through a descriptor berth opened: that
    // account needs execute permission on the file only, not a path into `.berth` (see
    // `user.rs`). The descriptor is inherited (not close-on-exec) so that a `#!` script's
    // interpreter can open `/proc/self/fd/N` too; a read-only descriptor of the task's own
    // executable is all the task gains. It stays open here until the spawn returned.
    // A directory artifact's task runs a program (on `PATH`, or relative to the snapshot) in
    // the snapshot directory: as another account, through an inherited descriptor of the
    // directory, bind-mounted where the account may walk (`in_snapshot_mount`).
    let opened = match (&spec.user, &spec.working_dir) {
        (None, _) => None,
        (Some(_), Some(dir)) => Some(inherited(std::fs::File::open(dir)?)?),
        (Some(_), None) => Some(inherited(std::fs::File::open(&spec.executable)?)?),
    };
    let by_descriptor = |file: &std::fs::File| format!("/proc/self/fd/{}", file.as_raw_fd());
    let mut command = match (&opened, &spec.working_dir, &spec.user) {
        (Some(file), None, _) => {
            let mut c = Command::new(by_descriptor(file));
            c.arg0(&spec.executable);
            c
        }
        (Some(dir), Some(_), Some(user)) => in_snapshot_mount(&by_descriptor(dir), user)?,
        _ => Command::new(&spec.executable),
    };
    if let (Some(user), None) = (&spec.user, &spec.working_dir) {
        // std drops root's supplementary groups too when it changes the uid.
        command.uid(user.uid).gid(user.gid);
    }
    if let (Some(_), Some(_)) = (&spec.user, &spec.working_dir) {
        command.arg(&spec.executable);
    }
    command
        .args(&spec.args)
        .env_clear()
        .envs(base_environment())
        .envs(spec.environment(port))
        .stdin(Stdio::null())
        // Its own group: a stop signal reaches everything the task started (a shell's
        // children included), and Ctrl-C in berth's terminal does not reach it directly.
        .process_group(0);
    match (&opened, &spec.working_dir) {
        // Entered by the mount wrapper.
        (Some(_), Some(_)) => {}
        (None, Some(dir)) => {
            command.current_dir(dir);
        }
        _ => {}
    }
    spawn_command(command, spec, opened)
}

/// Where a directory artifact's snapshot is mounted for a task that runs as another account.
pub const SNAPSHOT_MOUNT: &str = "/run/berth-task/app";

/// The command that runs a directory artifact's program as `user` in its snapshot (the
/// program and its arguments are appended by the caller). Entering the snapshot through a
/// descriptor is not enough there: interpreters turn the working directory into an absolute
/// path (`node server.js` resolves `server.js` with `getcwd()`, Python's `http.server` serves
/// `os.getcwd()`), and that path runs through `.berth` (0700), perhaps `/root`, which the
/// account may not walk. So the task gets a mount namespace of its own in which the snapshot
/// is bind-mounted, read-only, at [`SNAPSHOT_MOUNT`] (a path anyone may walk), enters it,
/// and only then drops to the account (util-linux's `unshare`, `mount` and `setpriv`: doing
/// it in the child between fork and exec would need `unsafe`, which the workspace forbids).
/// The pid stays the task's: `unshare`, `sh` and `setpriv` each exec the next.
fn in_snapshot_mount(dir: &str, user: &super::TaskUser) -> io::Result<Command> {
    let mount_point = std::path::Path::new(SNAPSHOT_MOUNT);
    std::fs::create_dir_all(mount_point)?;
    for path in [mount_point, mount_point.parent().unwrap_or(mount_point)] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        "set -e; mount --bind \"$1\" \"$2\"; mount -o remount,bind,ro \"$2\"; cd \"$2\"; \
         uid=$3 gid=$4; shift 4; \
         exec setpriv --reuid=\"$uid\" --regid=\"$gid\" --clear-groups -- \"$@\"",
        "berth-task",
        dir,
        SNAPSHOT_MOUNT,
        &user.uid.to_string(),
        &user.gid.to_string(),
    ]);
    Ok(command)
}

/// The file with close-on-exec cleared: the task inherits it.
fn inherited(file: std::fs::File) -> io::Result<std::fs::File> {
    fcntl(&file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(io::Error::from)?;
    Ok(file)
}

/// Spawns the prepared command with the task's output wiring.
fn spawn_command(
    mut command: Command,
    spec: &TaskSpec,
    kept_open: Option<std::fs::File>,
) -> io::Result<SpawnedChild> {
    match &spec.output {
        TaskOutput::Null => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        TaskOutput::Lines(_) => {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    let mut child = command.spawn()?;
    // The child has its copy: berth's goes.
    drop(kept_open);
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("child exited at once"))?;
    if let TaskOutput::Lines(sink) = &spec.output {
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(relay(stdout, OutputStream::Stdout, sink.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(relay(stderr, OutputStream::Stderr, sink.clone()));
        }
    }
    Ok(SpawnedChild { pid, child })
}

/// The few variables of berth's own environment a task inherits; everything else comes from
/// the stack, as in a container.
fn base_environment() -> impl Iterator<Item = (String, String)> {
    const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "TZ", "RUST_BACKTRACE"];
    INHERITED
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_owned(), v)))
}

async fn relay(stream: impl AsyncRead + Unpin, which: OutputStream, sink: Arc<dyn OutputSink>) {
    crate::logs::pipe_lines(stream, which, &*sink).await;
}

/// Owns the child until it is gone: records its exit, carries out a stop request, runs the
/// container health check meanwhile.
pub(super) async fn supervise(
    mut spawned: SpawnedChild,
    spec: TaskSpec,
    state: Arc<watch::Sender<TaskSnapshot>>,
    mut stop_rx: mpsc::UnboundedReceiver<StopRequest>,
) {
    let pgid = spawned.pid;
    let health_stop = CancellationToken::new();
    if let Some(check) = spec.health_check.clone() {
        let port = state.borrow().port;
        let tracker = HealthTracker::new(
            check,
            spec.environment(port),
            spec.user.clone(),
            spec.container.clone(),
            state.clone(),
        );
        tokio::spawn(tracker.run(health_stop.clone()));
    }

    let oom_kills_at_start = super::container::kernel_oom_kills();
    let mut stopped_by_berth = false;
    let status = tokio::select! {
        status = spawned.child.wait() => status,
        Some(request) = stop_rx.recv() => {
            stopped_by_berth = true;
            stop_group(&mut spawned.child, pgid, &spec, &state, request).await
        }
    };
    health_stop.cancel();
    // The main process is gone: whatever it left in its group goes with it, as when a
    // container's init exits.
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);

    let mut exit_code = status.ok().map(exit_code_of);
    let mut reason = reasons::ESSENTIAL_CONTAINER_EXITED;
    if let Some(container) = &spec.container {
        // The engine knows the container's own exit code and whether the kernel killed it
        // for its memory limit (ECS: OutOfMemoryError, exit code 137).
        if let Some((oom, code)) = container.finish().await {
            exit_code = Some(code);
            let oom = oom
                || super::container::killed_by_the_kernel(
                    code,
                    stopped_by_berth,
                    oom_kills_at_start,
                );
            if oom {
                reason = super::OUT_OF_MEMORY;
            }
        }
    }
    state.send_modify(|s| {
        s.last_status = TaskStatus::Deprovisioning;
    });
    state.send_modify(|s| {
        s.finish(
            StopCode::EssentialContainerExited,
            reason.to_owned(),
            exit_code,
        );
    });
    let snapshot = state.borrow().clone();
    tracing::info!(
        task = %snapshot.task_id,
        exit_code = ?snapshot.exit_code,
        stop_code = ?snapshot.stop_code,
        "task stopped"
    );
}

async fn stop_group(
    child: &mut Child,
    pgid: u32,
    spec: &TaskSpec,
    state: &watch::Sender<TaskSnapshot>,
    request: StopRequest,
) -> io::Result<ExitStatus> {
    state.send_modify(|s| {
        s.last_status = TaskStatus::Stopping;
        s.stopping_at = Some(Utc::now());
        s.stop_code.get_or_insert(request.code);
        s.stopped_reason.get_or_insert(request.reason);
    });
    let group = Pid::from_raw(pgid as i32);
    if let Some(container) = &spec.container {
        // The engine signals the container (SIGTERM, SIGKILL after the timeout); its `run`
        // client then exits with the container's status. The client gets a little longer
        // than the timeout before its own group is killed.
        container.stop(spec.stop_timeout).await;
        return match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(status) => status,
            Err(_elapsed) => {
                let _ = killpg(group, Signal::SIGKILL);
                child.wait().await
            }
        };
    }
    if let Err(error) = killpg(group, Signal::SIGTERM) {
        tracing::debug!(%error, pgid, "SIGTERM to the task's group failed");
    }
    match tokio::time::timeout(spec.stop_timeout, child.wait()).await {
        Ok(status) => status,
        Err(_elapsed) => {
            tracing::info!(pgid, "task ignored SIGTERM for its stop timeout: SIGKILL");
            if let Err(error) = killpg(group, Signal::SIGKILL) {
                tracing::debug!(%error, pgid, "SIGKILL to the task's group failed");
            }
            child.wait().await
        }
    }
}

/// The exit code as a shell (and ECS, S4.8) reports it: 128 + n for death by signal n.
fn exit_code_of(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => -1,
    }
}
