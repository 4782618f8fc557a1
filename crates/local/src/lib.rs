//! The embedded runtime.

mod accept;
pub mod balancer;
pub mod cleanup;
pub mod control;
pub mod database;
pub mod engine;
pub mod fds;
pub mod logs;
pub mod params;
pub mod registry;
mod repeated;
pub mod runtime;
pub mod service;
pub mod start_lock;
pub mod state_dir;
pub mod task;

/// An error with its causes on one line, `error: cause: cause`, as the CLI prints it.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
