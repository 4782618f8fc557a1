//! The unprivileged account tasks run as when berth runs as root.
//!
//! Tasks parse whatever clients upload (images, PDFs): as root, a parser bug would own the
//! machine. So a root berth starts every task as `berth-task`, a system account of its own
//! (created on first use, no home, no login shell). Not `nobody`: any daemon running as
//! `nobody` could read a task's `/proc/<pid>/environ`, which holds its secrets, and signal
//! it; a dedicated account shares them with no one. Not `postgres` either: a task could then
//! read the cluster's files directly.
//!
//! The task still starts from its registry snapshot, which sits under `.berth` (0700) and
//! perhaps under a directory closed to others (`/root`): berth opens the executable itself
//! and starts it through `/proc/self/fd/N` (see `process::spawn`), so the account needs only
//! execute permission on the file (snapshots are 0555), never a path into `.berth`.

use std::process::Command;

/// The account tasks run as when berth is root.
pub const TASK_OS_USER: &str = "berth-task";

/// An OS account a task runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its home directory (`HOME` of the task).
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskUserError {
    #[error("cannot create the {user:?} account tasks run as (useradd: {detail})")]
    Create { user: String, detail: String },
}

impl TaskUser {
    /// `None` when berth is not root (tasks run as berth's own user); else the
    /// [`TASK_OS_USER`] account, created when missing.
    pub fn for_this_berth() -> Result<Option<Self>, TaskUserError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        if let Some(user) = Self::lookup(TASK_OS_USER) {
            return Ok(Some(user));
        }
        create(TASK_OS_USER)?;
        Self::lookup(TASK_OS_USER)
            .map(Some)
            .ok_or_else(|| TaskUserError::Create {
                user: TASK_OS_USER.to_owned(),
                detail: "the account is still missing after useradd".to_owned(),
            })
    }

    /// The account `name`, if it exists.
    pub fn lookup(name: &str) -> Option<Self> {
        let user = nix::unistd::User::from_name(name).ok().flatten()?;
        Some(Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.to_string_lossy().into_owned(),
        })
    }
}

/// `useradd --system`: its own group, no home directory, no login shell.
fn create(name: &str) -> Result<(), TaskUserError> {
    let error = |detail: String| TaskUserError::Create {
        user: name.to_owned(),
        detail,
    };
    let output = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "berth tasks",
            name,
        ])
        .output()
        .map_err(|e| error(e.to_string()))?;
    // 9: the name exists (another berth created it meanwhile).
    if output.status.success() || output.status.code() == Some(9) {
        tracing::info!(user = name, "created the account tasks run as");
        Ok(())
    } else {
        Err(error(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}
