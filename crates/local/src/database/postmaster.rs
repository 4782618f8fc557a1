//! `postmaster.pid`: telling a live server from the stale lock file a killed one leaves.
//!
//! Line 1 is the postmaster's pid, line 4 its port. A file whose pid is not a live `postgres`
//! process is stale (after a SIGKILL or a reboot), and is removed so `pg_ctl start` does not
//! trip over it or over an unrelated process that reused the pid.

use std::fs;
use std::path::Path;

use crate::state_dir::FsError;

const PID_FILE: &str = "postmaster.pid";

/// A server that is running on a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub port: u16,
}

/// The server running on `data_dir`, from its pid file, if its pid is a live postgres.
pub fn running(data_dir: &Path) -> Option<Running> {
    let text = fs::read_to_string(data_dir.join(PID_FILE)).ok()?;
    let (pid, port) = parse(&text)?;
    (is_live_postgres(pid) && serves(pid, data_dir)).then_some(Running { pid, port })
}

/// Whether `pid` works in `data_dir` (a postmaster's working directory is its data
/// directory): a pid reused by another cluster's server is not ours. When the link cannot be
/// read, trust the pid file.
fn serves(pid: u32, data_dir: &Path) -> bool {
    match (
        fs::read_link(format!("/proc/{pid}/cwd")),
        fs::canonicalize(data_dir),
    ) {
        (Ok(cwd), Ok(data)) => cwd == data,
        _ => true,
    }
}

/// Resolves when process `pid` has exited (at once when it is already gone). The postmaster
/// is not berth's child (`pg_ctl` daemonises it), so this waits on a pidfd: the kernel tells
/// us, no polling.
pub async fn exited(pid: u32) {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return;
    };
    let fd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        // ESRCH: already gone.
        Err(_) => return,
    };
    // `new` is deprecated because it is unsound for a `T` that does not own its descriptor
    // (tokio#8587); an `OwnedFd` does, and `register` would need `unsafe`, which we forbid.
    #[allow(deprecated)]
    let fd = tokio::io::unix::AsyncFd::new(fd);
    match fd {
        // A pidfd becomes readable when its process exits.
        Ok(fd) => drop(fd.readable().await),
        Err(error) => {
            tracing::warn!(%error, "cannot watch the PostgreSQL server's pidfd");
            std::future::pending::<()>().await;
        }
    }
}

/// Removes the pid file when no live server owns it.
pub fn remove_stale(data_dir: &Path) -> Result<(), FsError> {
    let path = data_dir.join(PID_FILE);
    if !path.exists() || running(data_dir).is_some() {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), "removing the stale postmaster.pid of a server that is gone");
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsError::new("remove", path, e)),
    }
}

/// Removes the unix socket's lock file (`.s.PGSQL.<port>.lock` in `socket_dir`) when the
/// server it names is dead. PostgreSQL itself only checks that the pid exists, and a killed
/// postmaster lingers as a zombie until whoever inherited it reaps it: a restart in that
/// window would fail for nothing.
pub fn remove_stale_socket_lock(socket_dir: &Path, port: u16) -> Result<(), FsError> {
    let path = socket_dir.join(format!(".s.PGSQL.{port}.lock"));
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let pid: Option<u32> = text.lines().next().and_then(|l| l.trim().parse().ok());
    if pid.is_some_and(is_live_postgres) {
        return Ok(());
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsError::new("remove", path, e)),
    }
}

fn parse(text: &str) -> Option<(u32, u16)> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let port = lines.nth(2)?.trim().parse().ok()?;
    Some((pid, port))
}

/// Whether `pid` is alive and is a PostgreSQL server process (not some process that reused
/// the number). A zombie is dead: a killed postmaster, orphaned by `pg_ctl`, stays one when
/// the init it was handed to does not reap (a container's), with its name unchanged.
fn is_live_postgres(pid: u32) -> bool {
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    !zombie
        && fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| matches!(comm.trim(), "postgres" | "postmaster"))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pid_and_port() {
        let text = "1234\n/data\n1700000000\n5433\n/run\n127.0.0.1\n  1 2\nready   \n";
        assert_eq!(parse(text), Some((1234, 5433)));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn a_socket_lock_naming_no_live_server_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join(".s.PGSQL.5432.lock");
        // Our own pid is alive but not postgres; 99999999 cannot exist.
        for pid in [std::process::id(), 99_999_999] {
            fs::write(&lock, format!("{pid}\n/d\n")).unwrap();
            remove_stale_socket_lock(tmp.path(), 5432).unwrap();
            assert!(!lock.exists(), "pid {pid}");
        }
        // No lock file: nothing to do.
        remove_stale_socket_lock(tmp.path(), 5432).unwrap();
    }

    #[test]
    fn a_dead_pid_is_stale() {
        let tmp = tempfile::tempdir().unwrap();
        // pid_max is below 2^22 on Linux: this pid cannot exist.
        fs::write(tmp.path().join(PID_FILE), "99999999\n/d\n0\n5432\n").unwrap();
        assert_eq!(running(tmp.path()), None);
        remove_stale(tmp.path()).unwrap();
        assert!(!tmp.path().join(PID_FILE).exists());
        // Our own pid is alive but not postgres.
        fs::write(
            tmp.path().join(PID_FILE),
            format!("{}\n/d\n0\n5432\n", std::process::id()),
        )
        .unwrap();
        assert_eq!(running(tmp.path()), None);
    }
}
