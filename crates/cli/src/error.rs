//! Exit codes and the one place errors are printed.

use std::io::Write;
use std::process::ExitCode;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::output::{Output, Paint};

/// Exit code when an operation failed (a deploy rolled back, a health check failed).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for usage and configuration errors (bad flags, an invalid stack file).
pub const EXIT_USAGE: u8 = 2;

/// Why a verb failed; decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// The stack file is missing or invalid (exit 2); rendered as diagnostics.
    Stack(berth_spec::LoadError),
    /// The command line asks for something impossible (exit 2).
    Usage(anyhow::Error),
    /// The operation ran and failed (exit 1).
    Failed(anyhow::Error),
    /// The operation ran, found problems and has printed them (`doctor`'s failed checks,
    /// in its own table or JSON document): exit 1 with nothing more to print.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    Reported,
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> CliError {
        CliError::Failed(error)
    }
}

impl From<berth_spec::LoadError> for CliError {
    fn from(error: berth_spec::LoadError) -> CliError {
        CliError::Stack(error)
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Stack(_) | CliError::Usage(_) => EXIT_USAGE,
            CliError::Failed(_) | CliError::Reported => EXIT_FAILED,
        }
    }
}

/// Prints `error` once (text on stderr, or JSON on stdout with `--output json`) and returns
/// its exit code.
pub fn report(output: &Output, error: &CliError) -> ExitCode {
    let code = error.exit_code();
    if matches!(error, CliError::Reported) {
        return ExitCode::from(code);
    }
    if output.is_json() {
        let _ = output.json(&to_json(error, code));
    } else {
        let text = match error {
            CliError::Stack(diagnostic) => {
                render_diagnostic(diagnostic, output.stderr_color(), output.width())
            }
            CliError::Usage(e) | CliError::Failed(e) => render_chain(e, output),
            CliError::Reported => String::new(),
        };
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
    ExitCode::from(code)
}

/// A miette diagnostic as the terminal shows it.
pub fn render_diagnostic(diagnostic: &dyn miette::Diagnostic, color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width);
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("{diagnostic}\n");
    }
    out
}

fn render_chain(error: &anyhow::Error, output: &Output) -> String {
    let style = output.stderr_style();
    let mut out = format!("{} {error}\n", style.paint(Paint::Red, "error:"));
    for cause in error.chain().skip(1) {
        out.push_str(&format!(
            "  {} {cause}\n",
            style.paint(Paint::Dim, "caused by:")
        ));
    }
    out
}

fn to_json(error: &CliError, code: u8) -> serde_json::Value {
    match error {
        CliError::Stack(berth_spec::LoadError::Invalid(diagnostics)) => serde_json::json!({
            "error": {
                "message": diagnostics.to_string(),
                "exit_code": code,
                "file": diagnostics.file(),
                "problems": diagnostics.problems().iter().map(|p| serde_json::json!({
                    "code": p.code,
                    "message": p.message,
                    "line": p.line,
                    "column": p.column,
                    "labels": p.labels.iter().map(|l| serde_json::json!({
                        "text": l.text,
                        "offset": l.span.start,
                        "length": l.span.end - l.span.start,
                    })).collect::<Vec<_>>(),
                    "help": p.help,
                })).collect::<Vec<_>>(),
            }
        }),
        CliError::Stack(e) => chain_json(e, code),
        CliError::Usage(e) | CliError::Failed(e) => chain_json(e.as_ref(), code),
        CliError::Reported => serde_json::Value::Null,
    }
}

fn chain_json(error: &(dyn std::error::Error + 'static), code: u8) -> serde_json::Value {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    serde_json::json!({ "error": { "message": error.to_string(), "causes": causes, "exit_code": code } })
}
