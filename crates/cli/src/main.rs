//! `berth`: run the File Analyzer system (or any stack) locally or on AWS ECS.
//!
//! Adding a verb: write `commands/<verb>.rs` with an `Args` struct (clap derive, doc
//! comments become the help) and `pub async fn run(cx: &Context, args: Args) -> CliResult`,
//! declare it in `commands/mod.rs`, then add one variant to [`Command`] and one arm to
//! [`dispatch`].

mod commands;
mod context;
mod error;
mod github_workflows;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::Context;
use crate::error::CliResult;
use crate::output::Format;

/// Run a containerised system from one stack file: on this machine, or on AWS ECS Fargate.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// The stack file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "berth.toml",
        env = "BERTH_FILE"
    )]
    file: PathBuf,

    /// The environment to act on (an `[environments.<name>]` of the stack file).
    #[arg(
        short = 'e',
        long = "env",
        global = true,
        default_value = "local",
        env = "BERTH_ENV"
    )]
    environment: String,

    /// Output format: tables and text for people, JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    output: Format,

    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace); BERTH_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented starter berth.toml (or a complete example).
    Init(commands::init::Args),
    /// Check the stack file and report every problem at once.
    Validate(commands::validate::Args),
    /// Show the resolved stack with every default filled in.
    Explain(commands::explain::Args),
    /// Build services and push their artifacts to the local registry.
    Build(commands::build::Args),
    /// List the images of the local registry.
    Images(commands::images::Args),
    /// Manage parameters (String and SecureString), as SSM Parameter Store does (SSM itself
    /// with `-e <aws env>`).
    Param(commands::param::Args),
    /// Show a service's logs, every task merged in time order.
    Logs(commands::logs::Args),
    /// Run the whole stack on this machine: database, tasks, load balancer.
    Up(commands::up::Args),
    /// Show services, deployments, tasks, targets and recent events of the running stack (of
    /// ECS and the ALB with `-e <aws env>`).
    Status(commands::status::Args),
    /// Show what `berth up` would create, change and delete on an AWS environment.
    #[cfg(feature = "aws")]
    Plan(commands::aws::PlanArgs),
    /// Change a service's desired count on the running stack (on ECS with `-e <aws env>`).
    Scale(commands::scale::Args),
    /// Stop the running stack in order: drain, stop tasks, balancer, database.
    Down(commands::down::Args),
    /// Release a new revision of a service on the running stack (rolling update, circuit
    /// breaker); exit 0 when it completed, 1 when it failed or was rolled back.
    Deploy(commands::deploy::Args),
    /// Roll a service back: stop the deployment in progress, or return to the previous
    /// release (locally or on ECS).
    Rollback(commands::rollback::Args),
    /// List a service's deployments, newest first, with their outcome (locally or on ECS).
    Deployments(commands::deployments::Args),
    /// Write the CI/CD workflows of the stack file's `[ci.github]`.
    Ci(commands::ci::Args),
    /// Check an AWS environment for what keeps tasks from starting or serving, and say what
    /// to change; exit 1 when a check fails.
    #[cfg(feature = "aws")]
    Doctor(commands::doctor::Args),
}

async fn dispatch(cx: &Context, command: Command) -> CliResult {
    match command {
        Command::Init(args) => commands::init::run(cx, args).await,
        Command::Validate(args) => commands::validate::run(cx, args).await,
        Command::Explain(args) => commands::explain::run(cx, args).await,
        Command::Build(args) => commands::build::run(cx, args).await,
        Command::Images(args) => commands::images::run(cx, args).await,
        Command::Param(args) => commands::param::run(cx, args).await,
        Command::Logs(args) => commands::logs::run(cx, args).await,
        Command::Up(args) => commands::up::run(cx, args).await,
        Command::Status(args) => commands::status::run(cx, args).await,
        Command::Scale(args) => commands::scale::run(cx, args).await,
        #[cfg(feature = "aws")]
        Command::Plan(args) => commands::aws::plan(cx, args).await,
        Command::Down(args) => commands::down::run(cx, args).await,
        Command::Deploy(args) => commands::deploy::run(cx, args).await,
        Command::Rollback(args) => commands::rollback::run(cx, args).await,
        Command::Deployments(args) => commands::deployments::run(cx, args).await,
        Command::Ci(args) => commands::ci::run(cx, args).await,
        #[cfg(feature = "aws")]
        Command::Doctor(args) => commands::doctor::run(cx, args).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let cx = Context::new(cli.file, cli.environment, cli.output);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let error = error::CliError::Failed(
                anyhow::Error::new(e).context("cannot start the async runtime"),
            );
            return error::report(&cx.output, &error);
        }
    };
    match runtime.block_on(dispatch(&cx, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error::report(&cx.output, &error),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(output::color_enabled_for(&std::io::stderr()))
        .try_init();
}
