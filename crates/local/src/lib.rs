//! The embedded runtime.
