//! `berth init`: a commented starter stack file, or a complete example.

use std::io::Write;

use anyhow::Context as _;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Paint;

/// The commented starter.
pub const STARTER: &str = include_str!("starter.toml");

/// The File Analyzer system, as `examples/file-analyzer/berth.toml` holds it.
pub const FILE_ANALYZER: &str = include_str!("../../../../examples/file-analyzer/berth.toml");

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Example {
    /// The AWS ECS tutorial's system: web frontend, API, PostgreSQL (builds this repository).
    FileAnalyzer,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write a complete example instead of the starter.
    #[arg(long, value_enum)]
    pub example: Option<Example>,

    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let text = match args.example {
        None => STARTER.to_owned(),
        // In the repository the example builds from two levels up; written elsewhere, it
        // builds from the directory of the new file (run it at the repository's root).
        Some(Example::FileAnalyzer) => {
            FILE_ANALYZER.replace("context = \"../..\"", "context = \".\"")
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(&cx.file) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::Usage(anyhow::anyhow!(
                "{} already exists; use --force to replace it",
                cx.file.display()
            )));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot create {}", cx.file.display()))
                .into());
        }
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", cx.file.display()))?;
    if cx.output.is_json() {
        cx.output
            .json(&serde_json::json!({ "written": cx.file.display().to_string() }))?;
    } else {
        cx.output.line(format!(
            "wrote {}; check it with `berth validate -f {0}`",
            cx.file.display()
        ));
        if args.example.is_some() {
            let style = cx.output.stderr_style();
            cx.output.note(format!(
                "{} the example builds this repository's apps: run berth from the repository's root",
                style.paint(Paint::Yellow, "note:")
            ));
        }
    }
    Ok(())
}
