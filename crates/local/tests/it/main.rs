//! Integration tests of the embedded runtime (one binary, STYLE.md).

mod scheduler;
mod support;
mod task;
