//! `berth param put|get|list|history|rm`: the local parameter store (SSM semantics); on an AWS
//! environment, SSM Parameter Store itself (`commands::aws_ops::param`), rendered by the same
//! functions.

use std::io::Read;

use anyhow::{Context as _, anyhow};
use berth_local::params::{
    ParamError, ParamStore, Parameter, ParameterSummary, ParameterType, ParameterValue, PutOptions,
    REDACTED,
};
use berth_spec::Stack;
use serde::Serialize;

use super::local_state;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{Paint, Table};

/// Manage the parameter store (SSM Parameter Store on this machine).
///
/// Names follow SSM's rules: letters, digits, `_ . - /`, hierarchies start with `/` (at most
/// 15 levels), nothing starting with `aws` or `ssm`. SecureString values are encrypted at
/// rest in `.berth/params` and shown only with `--with-decryption`. With `-e <aws env>`: SSM
/// Parameter Store of that account and Region (SecureString with the default `aws/ssm` KMS
/// key).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub(crate) command: ParamCommand,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ParamCommand {
    /// Create a parameter, or add a version with --overwrite.
    Put(PutArgs),
    /// Print a parameter's value (`NAME` or `NAME:VERSION`).
    Get(GetArgs),
    /// List parameters (metadata only, never values).
    List(ListArgs),
    /// Every kept version of a parameter.
    History(GetArgs),
    /// Delete a parameter and all its versions.
    Rm(RmArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct PutArgs {
    pub(crate) name: String,
    /// The value; `-` reads it from stdin, so a secret stays out of the shell history.
    pub(crate) value: String,
    /// String or SecureString. Default: the type the stack file declares for the name, else
    /// String for a new parameter and the current type when overwriting.
    #[arg(long = "type", value_parser = parse_type)]
    pub(crate) kind: Option<ParameterType>,
    /// Replace an existing parameter (adds a version); without it, an existing name fails.
    #[arg(long)]
    pub(crate) overwrite: bool,
    #[arg(long)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// `NAME` or `NAME:VERSION`.
    pub(crate) name: String,
    /// Show a SecureString's value instead of `********`.
    #[arg(long)]
    pub(crate) with_decryption: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only parameters under this hierarchy (`/ecs/backend`).
    #[arg(long)]
    pub(crate) path: Option<String>,
    /// With --path: every level below it, not only its direct children.
    #[arg(long)]
    pub(crate) recursive: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RmArgs {
    pub(crate) name: String,
}

fn parse_type(text: &str) -> Result<ParameterType, String> {
    text.parse()
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        return crate::commands::aws_ops::param(cx, &stack, environment, args).await;
    }
    let state = local_state::open(cx, &stack, "param")?;
    let store = ParamStore::open(&state).context("cannot open the parameter store")?;
    match args.command {
        ParamCommand::Put(put) => put_parameter(cx, &store, &stack, put),
        ParamCommand::Get(get) => {
            let parameter = store
                .get(&get.name, get.with_decryption)
                .map_err(param_error)?;
            show_parameter(cx, &parameter)
        }
        ParamCommand::History(get) => {
            let versions = store
                .history(&get.name, get.with_decryption)
                .map_err(param_error)?;
            show_history(cx, &versions)
        }
        ParamCommand::List(list) => {
            check_list(&list)?;
            let parameters = store
                .list(list.path.as_deref(), list.recursive)
                .map_err(param_error)?;
            list_parameters(cx, &stack, &parameters, list.path.is_none())
        }
        ParamCommand::Rm(rm) => {
            store.delete(&rm.name).map_err(param_error)?;
            show_deleted(cx, &rm.name)
        }
    }
}

pub(crate) fn check_list(list: &ListArgs) -> CliResult {
    if list.recursive && list.path.is_none() {
        return Err(CliError::Usage(anyhow!("--recursive needs --path")));
    }
    Ok(())
}

pub(crate) fn show_deleted(cx: &Context, name: &str) -> CliResult {
    if cx.output.is_json() {
        cx.output.json(&serde_json::json!({ "deleted": name }))?;
    } else {
        cx.output.line(format!("deleted {name}"));
    }
    Ok(())
}

pub(crate) fn show_history(cx: &Context, versions: &[Parameter]) -> CliResult {
    if cx.output.is_json() {
        let rows: Vec<ParameterJson> = versions.iter().map(ParameterJson::from).collect();
        cx.output.json(&rows)?;
        return Ok(());
    }
    let mut table = Table::new(["VERSION", "TYPE", "MODIFIED", "VALUE"]);
    for p in versions {
        table.row([
            p.version.to_string(),
            p.kind.to_string(),
            p.last_modified.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            shown_value(&p.value),
        ]);
    }
    cx.output.table(&table);
    Ok(())
}

/// The value to put: the argument, or stdin for `-` (so a secret stays out of the shell
/// history).
pub(crate) fn read_value(value: String) -> CliResult<String> {
    if value != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the value from stdin")?;
    // `echo secret | berth param put` adds a newline that is not part of the value.
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

pub(crate) fn show_put(cx: &Context, name: &str, version: u64) -> CliResult {
    if cx.output.is_json() {
        cx.output
            .json(&serde_json::json!({ "name": name, "version": version }))?;
    } else {
        cx.output.line(format!("{name} version {version}"));
    }
    Ok(())
}

/// `--type`, or else the type the stack file declares for the name: a parameter the stack
/// declares SecureString is never stored as plain text because `--type` was forgotten.
pub(crate) fn put_kind(stack: &Stack, put: &PutArgs) -> Option<ParameterType> {
    put.kind.or_else(|| {
        stack
            .parameter(&put.name)
            .map(|declared| declared.kind.into())
    })
}

fn put_parameter(cx: &Context, store: &ParamStore, stack: &Stack, put: PutArgs) -> CliResult {
    let kind = put_kind(stack, &put);
    let value = read_value(put.value)?;
    let options = PutOptions {
        kind,
        overwrite: put.overwrite,
        description: put.description,
    };
    let version = store
        .put(&put.name, &value, &options)
        .map_err(param_error)?;
    show_put(cx, &put.name, version)
}

pub(crate) fn show_parameter(cx: &Context, parameter: &Parameter) -> CliResult {
    if cx.output.is_json() {
        cx.output.json(&ParameterJson::from(parameter))?;
        return Ok(());
    }
    match &parameter.value {
        ParameterValue::Plain(value) => cx.output.line(value),
        // The one place a secret is printed, because the operator asked for it.
        ParameterValue::Secret(secret) => cx.output.line(secret.expose()),
        ParameterValue::Redacted => {
            cx.output.line(REDACTED);
            cx.output.note(format!(
                "{} is a SecureString: add --with-decryption to show its value",
                parameter.name
            ));
        }
    }
    Ok(())
}

pub(crate) fn list_parameters(
    cx: &Context,
    stack: &berth_spec::Stack,
    parameters: &[ParameterSummary],
    include_unset: bool,
) -> CliResult {
    // The stack's parameters that have no value yet (the operator must set them, or
    // `berth up` fills them).
    let unset: Vec<&berth_spec::Parameter> = if include_unset {
        stack
            .parameters
            .iter()
            .filter(|p| !parameters.iter().any(|s| same_name(&s.name, &p.name)))
            .collect()
    } else {
        Vec::new()
    };
    if cx.output.is_json() {
        cx.output.json(&serde_json::json!({
            "parameters": parameters,
            "unset": unset.iter().map(|p| &p.name).collect::<Vec<_>>(),
        }))?;
        return Ok(());
    }
    let style = cx.output.style();
    let mut table = Table::new(["NAME", "TYPE", "VERSION", "MODIFIED", "DESCRIPTION"]);
    for p in parameters {
        table.row([
            p.name.clone(),
            p.kind.to_string(),
            p.version.to_string(),
            p.last_modified.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            p.description.clone().unwrap_or_default(),
        ]);
    }
    for p in &unset {
        let kind = match p.kind {
            berth_spec::ParameterType::String => "String",
            berth_spec::ParameterType::SecureString => "SecureString",
        };
        table.row([
            p.name.clone(),
            kind.to_owned(),
            style.paint(Paint::Yellow, "not set"),
            String::new(),
            p.description.clone().unwrap_or_default(),
        ]);
    }
    cx.output.table(&table);
    Ok(())
}

/// SSM treats `/Name` and `Name` as one parameter.
fn same_name(a: &str, b: &str) -> bool {
    let canonical = |n: &str| {
        let body = n.strip_prefix('/').unwrap_or(n);
        if body.contains('/') {
            n.to_owned()
        } else {
            body.to_owned()
        }
    };
    canonical(a) == canonical(b)
}

fn shown_value(value: &ParameterValue) -> String {
    match value {
        ParameterValue::Secret(secret) => secret.expose().to_owned(),
        other => other.to_string(),
    }
}

/// A usage error for what the operator typed wrong (a bad name, an existing parameter
/// without --overwrite), a failure otherwise.
fn param_error(error: ParamError) -> CliError {
    match error {
        ParamError::InvalidName(_)
        | ParamError::InvalidValue { .. }
        | ParamError::InvalidSelector { .. } => CliError::Usage(anyhow::Error::new(error)),
        ParamError::AlreadyExists { .. } => CliError::Usage(anyhow!(
            "{error}\nhint: add --overwrite to replace it (as a new version)"
        )),
        other => CliError::Failed(anyhow::Error::new(other)),
    }
}

#[derive(Debug, Serialize)]
struct ParameterJson {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    version: u64,
    value: String,
    last_modified: String,
    description: Option<String>,
}

impl From<&Parameter> for ParameterJson {
    fn from(p: &Parameter) -> Self {
        ParameterJson {
            name: p.name.clone(),
            kind: p.kind.to_string(),
            version: p.version,
            value: shown_value(&p.value),
            last_modified: p.last_modified.to_rfc3339(),
            description: p.description.clone(),
        }
    }
}
