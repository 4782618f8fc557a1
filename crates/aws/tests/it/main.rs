//! The AWS engine's tests: the pure planner (snapshots) and the whole lifecycle against moto.

mod autoscaling;
mod ci_identity;
mod convergence;
mod deploy;
mod doctor;
mod https;
mod lifecycle;
mod lifecycle_checks;
mod operate;
mod planner;
mod rollback;
pub mod service_fake;
mod strategies;
mod support;
