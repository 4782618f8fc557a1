//! Runs the built `berth` binary: exit codes, output formats, init/validate/explain.

mod local_stores;
mod running;
mod verbs;
