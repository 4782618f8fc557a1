//! The git revision a build is tagged with, as the seed's CI tags images by commit SHA.

use std::path::Path;
use std::process::Command;

/// The revision of the repository that holds a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRevision {
    /// `git rev-parse --short=12 HEAD`.
    pub short_sha: String,
    /// Uncommitted changes (berth's own `.berth/` state is not counted).
    pub dirty: bool,
}

impl GitRevision {
    /// The image tag: the short SHA, with `-dirty` for an unclean tree so a tag never claims a
    /// commit the bytes do not come from.
    pub fn tag(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.short_sha)
        } else {
            self.short_sha.clone()
        }
    }
}

/// The revision of the git repository containing `dir`, or `None` when `dir` is not inside
/// one (or git is not installed): the image is then tagged `latest` only.
pub fn git_revision(dir: &Path) -> Option<GitRevision> {
    let sha = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let short_sha = String::from_utf8_lossy(&sha.stdout).trim().to_owned();
    if short_sha.is_empty() {
        return None;
    }
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "status",
            "--porcelain",
            "--",
            ":/",
            ":(top,exclude,glob)**/.berth/**",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success());
    // When status cannot be read, claim dirty: a clean tag must be earned.
    let dirty = status.is_none_or(|out| !out.stdout.iter().all(u8::is_ascii_whitespace));
    Some(GitRevision { short_sha, dirty })
}
