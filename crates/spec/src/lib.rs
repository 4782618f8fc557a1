//! The berth.toml stack file.
