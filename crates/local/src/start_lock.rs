//! One berth starts a stack at a time: `.berth/run/start.lock`, an exclusive `flock` held by
//! the berth that runs the stack (a foreground `berth up` for its whole life; `berth up -d`
//! while it waits for its detached berth, which takes the lock over when it lets go). It
//! holds the pid of the berth that runs the stack, so the loser of a race can name it.
//!
//! The kernel drops the lock when its holder exits, however it exits: a killed berth never
//! leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::control::ensure_private_dir;

/// The lock file's name inside the run directory.
pub const START_LOCK: &str = "start.lock";

#[derive(Debug, thiserror::Error)]
pub enum StartLockError {
    #[error("berth is already running this stack, or starting it{}; use `berth status` or `berth down`", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32> },
    #[error("cannot lock {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct StartLock {
    file: Flock<File>,
    path: PathBuf,
}

impl StartLock {
    /// Takes the lock without waiting, recording this process as the one that runs the stack.
    pub fn acquire(run_dir: &Path) -> Result<Self, StartLockError> {
        Self::take(run_dir, FlockArg::LockExclusiveNonblock)
    }

    /// Takes the lock once its holder lets go (blocks the thread: for the detached berth,
    /// which takes it over from the `berth up -d` that started it).
    pub fn acquire_waiting(run_dir: &Path) -> Result<Self, StartLockError> {
        Self::take(run_dir, FlockArg::LockExclusive)
    }

    fn take(run_dir: &Path, how: FlockArg) -> Result<Self, StartLockError> {
        let path = run_dir.join(START_LOCK);
        let io_error = |source| StartLockError::Io {
            path: path.clone(),
            source,
        };
        ensure_private_dir(run_dir).map_err(io_error)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_error)?;
        let file = match Flock::lock(file, how) {
            Ok(file) => file,
            Err((file, Errno::EWOULDBLOCK)) => {
                return Err(StartLockError::Held {
                    pid: holder_pid(&file),
                });
            }
            Err((_, errno)) => return Err(io_error(errno.into())),
        };
        let mut lock = Self { file, path };
        lock.set_pid(std::process::id())?;
        Ok(lock)
    }

    /// Records `pid` as the berth that runs the stack (the detached berth this one started).
    /// One write of a fixed width over the old pid, never a truncation, so a reader sees
    /// one pid or the other, never an empty file.
    pub fn set_pid(&mut self, pid: u32) -> Result<(), StartLockError> {
        use std::os::unix::fs::FileExt;
        let file: &File = &self.file;
        file.write_all_at(format!("{pid:<10}\n").as_bytes(), 0)
            .map_err(|source| StartLockError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The pid the holder recorded. A holder that has only just taken the lock (of a file it
/// created) writes its pid a moment later: an empty file is read again, for at most
/// [`HOLDER_PATIENCE`], before giving up on naming it.
fn holder_pid(file: &File) -> Option<u32> {
    use std::os::unix::fs::FileExt;
    wait_for_pid(
        || {
            let mut buffer = [0u8; 16];
            let read = file.read_at(&mut buffer, 0).unwrap_or(0);
            buffer[..read].to_vec()
        },
        HOLDER_PATIENCE,
    )
}

/// Reads the lock file's contents until they are not empty or `patience` has passed, then
/// parses them as a pid.
fn wait_for_pid(mut read: impl FnMut() -> Vec<u8>, patience: std::time::Duration) -> Option<u32> {
    let start = std::time::Instant::now();
    loop {
        let contents = read();
        if !contents.is_empty() || start.elapsed() >= patience {
            return std::str::from_utf8(&contents).ok()?.trim().parse().ok();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// How long a loser waits for a new holder to record its pid.
const HOLDER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = StartLock::acquire(dir.path()).unwrap();
        first.set_pid(4242).unwrap();
        match StartLock::acquire(dir.path()) {
            Err(StartLockError::Held { pid }) => assert_eq!(pid, Some(4242)),
            other => panic!("expected the lock to be held, got {other:?}"),
        }
        drop(first);
        StartLock::acquire(dir.path()).unwrap();
    }

    /// A holder that has locked the new file but not yet written its pid is still named: the
    /// loser reads the empty file again until the pid is there.
    #[test]
    fn a_holder_that_has_not_written_its_pid_yet_is_named_once_it_has() {
        let mut reads = 0;
        let pid = wait_for_pid(
            || {
                reads += 1;
                if reads < 4 {
                    Vec::new()
                } else {
                    b"4243      \n".to_vec()
                }
            },
            HOLDER_PATIENCE,
        );
        assert_eq!(pid, Some(4243));
        assert_eq!(reads, 4);
    }

    /// A holder that never writes its pid is not named, and the loser stops waiting.
    #[test]
    fn a_holder_that_never_writes_its_pid_is_unnamed_after_the_patience() {
        let mut reads = 0;
        let pid = wait_for_pid(
            || {
                reads += 1;
                Vec::new()
            },
            std::time::Duration::ZERO,
        );
        assert_eq!(pid, None);
        assert_eq!(reads, 1);
    }
}
