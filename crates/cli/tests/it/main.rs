//! Runs the built `berth` binary: exit codes, output formats, init/validate/explain.

mod verbs;
