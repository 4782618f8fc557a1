//! Test harness shared by the workspace's tests.
//!
//! Test-only: no crate depends on it outside `[dev-dependencies]`.

use std::path::PathBuf;

/// Path of a binary of this workspace (`file-analyzer-api`, `berth`, ...) built into the same
/// target directory as the running test.
///
/// `scripts/test` builds every binary (`cargo build --workspace --bins`) before the tests run,
/// so a test of one package can start another package's binary.
///
/// # Panics
/// When the binary has not been built: the message says which command builds it.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}
