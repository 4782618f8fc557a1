//! The `berth.toml` stack file: schema, defaults and validation.
//!
//! [`load`] (or [`parse`]) turns a stack file into a [`Stack`]: plain data with every default
//! applied, which the embedded runtime and the AWS engine consume. Invalid files produce
//! [`Diagnostics`]: every problem at once, each a miette diagnostic with a label under the
//! offending text and, where it helps, a hint ("did you mean `port`?").
//!
//! # How the file is read
//! The file is parsed into toml's spanned document (`toml::de::DeTable`), which this crate
//! walks itself instead of deserializing with serde: serde stops at the first error, while a
//! walk can report an unknown key, a wrong type and a bad value in one run. Every table
//! records the keys the schema asks for; anything else is an unknown key.
//!
//! # Schema choices
//! - Durations are strings with a unit (`"30s"`, `"5m"`, `"250ms"`), never bare numbers.
//! - Defaults are the seed's values, else AWS's documented defaults (ECS-SEMANTICS.md):
//!   health check 30s/5s/5/2/"200", deregistration delay 300s, rolling 100%/200% with the
//!   circuit breaker and rollback on, stop timeout 30s, 30-day log retention, prefix `ecs`,
//!   2 AZs on 10.0.0.0/16 with a NAT gateway per AZ, postgres 15 on db.t3.medium, 20 GiB gp3,
//!   7-day backups.
//! - Resource names derive from `stack.name` (`<name>-cluster`, `<name>-vpc`, `<name>-alb`,
//!   `<service>-service`, `<service>-task`, `<service>-repo`, `<service>-tg`, `/ecs/<service>`)
//!   and each can be set explicitly.
//! - Routes live with their service (`routes = [{ path, priority }]`); the service that
//!   receives unmatched requests is `load_balancer.default_service` (implied when the stack
//!   has one service).
//! - Secrets are parameter names only. A SecureString never has a value in the file: the
//!   operator sets it (`berth param put`), or berth generates it (`generate = "password"`),
//!   or it is the managed database's user name / password (`database.username_parameter`,
//!   `database.password_parameter`).
//! - A String parameter's value may reference stack outputs: `${database.host}`,
//!   `${database.port}`, `${database.name}`, `${load_balancer.url}`,
//!   `${load_balancer.dns_name}`, and other String parameters as `${param:/name}`.
//! - The `local` environment always exists. Its health-check interval, timeout, thresholds
//!   and deregistration delay replace the services' AWS values when running locally
//!   (2s/1s/2/2/5s instead of 30s/5s/5/2/300s), so a local start takes seconds, not minutes;
//!   see [`Stack::effective_health_check`].
//!
//! This crate does no I/O except reading the file in [`load`], and knows nothing about
//! processes or AWS APIs.

mod diagnostics;
pub mod duration;
mod model;
mod reader;
mod resolve;
pub mod rules;
pub mod status;

use std::path::{Path, PathBuf};

pub use diagnostics::{Diagnostics, Label, Problem};
pub use model::*;

/// Why a stack file could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read stack file {}", path.display())]
    #[diagnostic(
        code(berth::read_stack),
        help("create one with `berth init`, or point at it with `-f FILE`")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] Diagnostics),
}

/// Reads and validates the stack file at `path`. Relative paths inside the file resolve
/// against the file's directory.
pub fn load(path: &Path) -> Result<Stack, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let root = std::path::absolute(dir).map_err(read_error)?;
    Ok(parse(&text, &path.display().to_string(), &root)?)
}

/// Validates stack-file text. `file` names it in diagnostics; `root` is the directory
/// relative paths resolve against.
pub fn parse(text: &str, file: &str, root: &Path) -> Result<Stack, Diagnostics> {
    let (doc, errors) = toml::de::DeTable::parse_recoverable(text);
    let mut problems = reader::Problems::default();
    if !errors.is_empty() {
        // After a syntax error the document is a guess: report the syntax only.
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            problems.push(
                Problem::new(
                    "berth::toml_syntax",
                    format!("invalid TOML: {}", error.message().trim_end()),
                )
                .label(span, "here"),
            );
        }
        return Err(Diagnostics::new(file, text, problems.list));
    }
    let span = doc.span();
    let stack = resolve::resolve(text, doc.get_ref(), span, root, &mut problems);
    if problems.list.is_empty() {
        Ok(stack)
    } else {
        Err(Diagnostics::new(file, text, problems.list))
    }
}
