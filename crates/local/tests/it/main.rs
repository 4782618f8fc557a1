//! Integration tests of the embedded runtime (one binary, STYLE.md).

mod accept;
mod autoscaling;
mod balancer;
mod containers;
mod control;
mod database;
mod e2e;
mod logs;
mod params;
mod recovery;
mod registry;
mod release;
mod scheduler;
mod shutdown;
mod strategies;
mod support;
mod task;
