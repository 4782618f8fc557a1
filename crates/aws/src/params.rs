//! `berth param … -e <aws env>`: SSM Parameter Store, with the local store's verbs (put, get,
//! history, list, rm). SecureStrings are encrypted with the account's default key for SSM
//! (`alias/aws/ssm`), which the execution role's `ssm:GetParameters` reads through.
//!
//! A value crosses this module only when asked for (`with_decryption`); [`Param`]'s `Debug`
//! never shows a SecureString's.

use std::fmt;

use aws_sdk_ssm::types::{ParameterStringFilter, ParameterType as SsmType};
use berth_spec::ParameterType;
use chrono::{DateTime, Utc};

use crate::clients::Clients;
use crate::error::{self, Error, Result};
use crate::status::time;

/// One version of a parameter.
#[derive(Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParameterType,
    /// A String's value; a SecureString's only when decryption was asked for.
    pub value: Option<String>,
    pub version: u64,
    pub last_modified: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

impl fmt::Debug for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match (&self.value, self.kind) {
            (Some(v), ParameterType::String) => v.as_str(),
            (Some(_), ParameterType::SecureString) => "(secret)",
            (None, _) => "(not decrypted)",
        };
        f.debug_struct("Param")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("value", &value)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A parameter's metadata: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSummary {
    pub name: String,
    pub kind: ParameterType,
    pub version: u64,
    pub last_modified: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// How to put a value (the local store's options).
#[derive(Debug, Clone, Default)]
pub struct PutParam {
    /// `None`: the current type when overwriting, String for a new parameter.
    pub kind: Option<ParameterType>,
    pub overwrite: bool,
    pub description: Option<String>,
}

fn ssm_type(kind: ParameterType) -> SsmType {
    match kind {
        ParameterType::String => SsmType::String,
        ParameterType::SecureString => SsmType::SecureString,
    }
}

fn our_type(kind: Option<&SsmType>) -> ParameterType {
    match kind {
        Some(SsmType::SecureString) => ParameterType::SecureString,
        _ => ParameterType::String,
    }
}

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// SSM's "not there" codes as the error the local store gives.
fn not_found(name: &str, code: Option<&str>) -> Option<Error> {
    match code {
        Some("ParameterNotFound") => Some(Error::Other(format!(
            "parameter {name} not found (ParameterNotFound)"
        ))),
        Some("ParameterVersionNotFound") => Some(Error::Other(format!(
            "parameter {name} has no such version (ParameterVersionNotFound)"
        ))),
        _ => None,
    }
}

/// PutParameter; returns the new version.
pub(crate) async fn put(c: &Clients, name: &str, value: &str, options: &PutParam) -> Result<u64> {
    let kind = match options.kind {
        Some(kind) => kind,
        // An overwrite keeps the type; SSM wants it said on every put.
        None if options.overwrite => current_type(c, name).await?,
        None => ParameterType::String,
    };
    let sent = c
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ssm_type(kind))
        .overwrite(options.overwrite)
        .set_description(options.description.clone())
        .send()
        .await;
    match sent {
        Ok(out) => Ok(version(out.version())),
        Err(e) if error::code(&e) == Some("ParameterAlreadyExists") => {
            Err(Error::ParameterExists {
                name: name.to_owned(),
            })
        }
        Err(e) => Err(error::call("ssm:PutParameter")(e)),
    }
}

/// The type an overwrite keeps: the parameter's own, String when there is none. Any other
/// failure is an error, never a guess: reading a SecureString's type could fail
/// (AccessDenied, throttling), and guessing String would store the secret as plain text.
async fn current_type(c: &Clients, name: &str) -> Result<ParameterType> {
    match c.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(our_type(out.parameter().and_then(|p| p.r#type()))),
        Err(e) if error::code(&e) == Some("ParameterNotFound") => Ok(ParameterType::String),
        Err(e) => Err(error::call("ssm:GetParameter")(e)),
    }
}

/// GetParameter: `selector` is `NAME` or `NAME:VERSION`, as SSM takes it.
pub(crate) async fn get(c: &Clients, selector: &str, with_decryption: bool) -> Result<Param> {
    let out = c
        .ssm
        .get_parameter()
        .name(selector)
        .with_decryption(with_decryption)
        .send()
        .await
        .map_err(|e| {
            not_found(selector, error::code(&e))
                .unwrap_or_else(|| error::call("ssm:GetParameter")(e))
        })?;
    let p = out
        .parameter()
        .ok_or_else(|| Error::Other(format!("ssm:GetParameter returned no {selector}")))?;
    let kind = our_type(p.r#type());
    Ok(Param {
        name: p.name().unwrap_or(selector).to_owned(),
        kind,
        value: (with_decryption || kind == ParameterType::String)
            .then(|| p.value().unwrap_or("").to_owned()),
        version: version(p.version()),
        last_modified: time(p.last_modified_date()),
        description: None,
    })
}

/// GetParameterHistory: every kept version, oldest first.
pub(crate) async fn history(c: &Clients, name: &str, with_decryption: bool) -> Result<Vec<Param>> {
    let mut pages = c
        .ssm
        .get_parameter_history()
        .name(name)
        .with_decryption(with_decryption)
        .into_paginator()
        .send();
    let mut versions = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            not_found(name, error::code(&e))
                .unwrap_or_else(|| error::call("ssm:GetParameterHistory")(e))
        })?;
        for p in page.parameters() {
            let kind = our_type(p.r#type());
            versions.push(Param {
                name: p.name().unwrap_or(name).to_owned(),
                kind,
                value: (with_decryption || kind == ParameterType::String)
                    .then(|| p.value().unwrap_or("").to_owned()),
                version: version(p.version()),
                last_modified: time(p.last_modified_date()),
                description: p.description().map(str::to_owned),
            });
        }
    }
    versions.sort_by_key(|p| p.version);
    Ok(versions)
}

/// DescribeParameters: every parameter of the account, or those under `path` (its direct
/// children unless `recursive`). Metadata only, sorted by name.
pub(crate) async fn list(
    c: &Clients,
    path: Option<&str>,
    recursive: bool,
) -> Result<Vec<ParamSummary>> {
    let filter = path
        .map(|path| {
            ParameterStringFilter::builder()
                .key("Path")
                .option(if recursive { "Recursive" } else { "OneLevel" })
                .values(path)
                .build()
                .map_err(error::build("a parameter filter"))
        })
        .transpose()?;
    let mut pages = c
        .ssm
        .describe_parameters()
        .set_parameter_filters(filter.map(|f| vec![f]))
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(error::call("ssm:DescribeParameters"))?;
        for p in page.parameters() {
            found.push(ParamSummary {
                name: p.name().unwrap_or("").to_owned(),
                kind: our_type(p.r#type()),
                version: version(p.version()),
                last_modified: time(p.last_modified_date()),
                description: p.description().map(str::to_owned),
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// DeleteParameter: the parameter and all its versions.
pub(crate) async fn delete(c: &Clients, name: &str) -> Result<()> {
    c.ssm
        .delete_parameter()
        .name(name)
        .send()
        .await
        .map_err(|e| {
            not_found(name, error::code(&e))
                .unwrap_or_else(|| error::call("ssm:DeleteParameter")(e))
        })?;
    Ok(())
}
