//! The API against a real PostgreSQL started by the test itself.

mod common;
mod files;
mod health;
mod hostile;
mod images;
mod resilience;
mod writers;
