//! Integration tests of the web frontend: pages against a fake API (`pages`), the binary's
//! life cycle (`binary`), and a real browser against the real API and PostgreSQL (`browser`).

mod binary;
mod browser;
mod chrome;
mod fake_api;
mod origin;
mod pages;
mod support;
