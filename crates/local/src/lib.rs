//! The embedded runtime.

pub mod runtime;
pub mod service;
pub mod task;
