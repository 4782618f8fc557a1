//! The container engine the container tests use: podman (or what `BERTH_CONTAINER_ENGINE`
//! names), made ready by `scripts/container-setup`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The engine program when one answers; `None` (the test returns early, saying so) when
/// none is installed. Under `CI=true` a missing or broken engine fails the test instead:
/// CI installs one (`.ci/run`), so its absence there is a broken setup, never a skip.
///
/// # Panics
/// Under `CI=true` without a working engine.
pub fn container_engine() -> Option<PathBuf> {
    let name = std::env::var("BERTH_CONTAINER_ENGINE").unwrap_or_else(|_| "podman".into());
    let answers = Command::new(&name)
        .args(["info", "--format", "{{.Host.Arch}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if answers {
        return Some(PathBuf::from(name));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the container engine `{name}` does not answer: run scripts/container-setup"
    );
    eprintln!("no container engine (`{name} info` failed): container test not run");
    None
}

/// Removes every image of `repository` (`localhost/<repository>`) when dropped, so tests
/// leave the engine's store as they found it.
pub struct ImageCleanup {
    pub engine: PathBuf,
    pub repository: String,
}

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let name = format!("localhost/{}", self.repository);
        let ids = Command::new(&self.engine)
            .args(["images", "--quiet", "--no-trunc", &name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new(&self.engine)
                .args(["rmi", "--force"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
