//! The embedded runtime.

pub mod balancer;
pub mod cleanup;
pub mod control;
pub mod database;
pub mod logs;
pub mod params;
pub mod registry;
pub mod runtime;
pub mod service;
pub mod start_lock;
pub mod state_dir;
pub mod task;
