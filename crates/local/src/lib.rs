//! The embedded runtime.

pub mod cleanup;
pub mod control;
pub mod runtime;
pub mod service;
pub mod task;
