//! Integration tests of the embedded runtime (one binary, STYLE.md).

mod control;
mod recovery;
mod scheduler;
mod support;
mod task;
