//! Helpers shared by the tests.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use berth_local::task::TaskSpec;

/// An upper bound so a broken test fails instead of hanging; never a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("gave up waiting for {what}"),
    }
}

/// A task running `sh -c script`.
pub fn shell_task(script: &str) -> TaskSpec {
    let mut spec = TaskSpec::new("/bin/sh");
    spec.args = vec!["-c".to_owned(), script.to_owned()];
    spec
}

/// Polls `condition` every 20 ms until it holds (bounded by [`PATIENCE`]).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Whether a process is gone (or a zombie waiting to be reaped by someone else).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

pub fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
