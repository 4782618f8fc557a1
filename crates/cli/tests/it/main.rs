//! Runs the built `berth` binary: exit codes, output formats, init/validate/explain.

#[cfg(feature = "aws")]
mod aws;
mod ci;
mod containers;
mod local_stores;
mod running;
mod verbs;
