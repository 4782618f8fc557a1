//! Runs the built `berth` binary: exit codes, output formats, init/validate/explain.

#[cfg(feature = "aws")]
mod aws;
mod ci;
mod containers;
mod local_stores;
#[cfg(feature = "aws")]
mod push;
mod running;
mod verbs;
