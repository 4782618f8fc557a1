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
