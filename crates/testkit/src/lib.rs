//! Test harness shared by the workspace's tests.
//!
//! Test-only: no crate depends on it outside `[dev-dependencies]`.
//!
//! - [`Postgres`]: a throwaway PostgreSQL 15 server (initdb + pg_ctl in a temporary
//!   directory, on a free 127.0.0.1 port, as the `postgres` user when running as root).
//! - [`Server`]: a spawned binary of this workspace (the API, the web frontend) with its
//!   environment, waited on until its health path answers, killed on drop.
//! - [`Moto`]: moto in server mode on 127.0.0.1, the AWS endpoint of the AWS engine's tests.
//! - [`Registry`]: an image registry on 127.0.0.1 (`docker-registry`), ECR's registry side.
//! - [`container_engine`]: podman when it answers (a failure under `CI=true` when not).
//! - [`fixtures`]: files made in code (a PDF, a PNG bomb) for the apps' tests.
//! - [`bin_path`], [`free_port`], [`http_get`]: small helpers the two build on.

mod engine;
pub mod fixtures;
mod moto;
mod net;
mod postgres;
mod registry;
mod server;

pub use engine::{ImageCleanup, container_engine};
pub use moto::{MOTO_RUNNING_TASKS, Moto};
pub use net::{HttpResponse, free_port, http_get, http_request, listening_addresses};
pub use postgres::Postgres;
pub use registry::{MOTO_ECR_PASSWORD, Registry};
pub use server::Server;

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
