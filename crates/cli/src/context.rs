//! What every verb receives: the global options and the output.

use std::path::PathBuf;

use anyhow::anyhow;
use berth_spec::{Environment, Stack};

use crate::error::CliError;
use crate::output::{Format, Output};

pub struct Context {
    /// The stack file (`-f`, default `berth.toml`).
    pub file: PathBuf,
    /// The environment name (`-e`, default `local`).
    pub environment: String,
    pub output: Output,
}

impl Context {
    pub fn new(file: PathBuf, environment: String, format: Format) -> Context {
        Context {
            file,
            environment,
            output: Output::detect(format),
        }
    }

    /// Loads and validates the stack file; problems become exit code 2.
    pub fn load_stack(&self) -> Result<Stack, CliError> {
        berth_spec::load(&self.file).map_err(CliError::Stack)
    }

    /// The environment `-e` names; an unknown name is a usage error.
    pub fn environment<'s>(&self, stack: &'s Stack) -> Result<&'s Environment, CliError> {
        stack.environment(&self.environment).ok_or_else(|| {
            let names: Vec<&str> = stack.environments.iter().map(|e| e.name.as_str()).collect();
            CliError::Usage(anyhow!(
                "no environment `{}` in {} (environments: {})",
                self.environment,
                self.file.display(),
                names.join(", ")
            ))
        })
    }
}
