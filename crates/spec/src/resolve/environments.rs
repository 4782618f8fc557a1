//! `[environments.<name>]`: where the stack runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{AwsEnvironment, Environment, EnvironmentKind, LocalEnvironment};
use crate::reader::{Problems, Table, as_table};

const SECOND: Duration = Duration::from_secs(1);

/// The local environment's defaults: fast health checks, short draining.
pub(crate) fn default_local() -> LocalEnvironment {
    LocalEnvironment {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        state_dir: PathBuf::from(".berth"),
        health_check_interval: Duration::from_secs(2),
        health_check_timeout: Duration::from_secs(1),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        deregistration_delay: Duration::from_secs(5),
        log_group_max_mb: 256,
        metric_period: 5 * SECOND,
    }
}

pub(crate) fn read(top: &mut Table<'_, '_>, problems: &mut Problems) -> Vec<Environment> {
    let mut environments = Vec::new();
    if let Some(table) = top.table(problems, "environments") {
        for (name, node) in table.entries() {
            let Some(mut env) = as_table(problems, node, format!("environments.{}", name.value))
            else {
                continue;
            };
            if let Some(why) = crate::rules::dns_label_problem(name.value, 32) {
                problems.at(
                    "berth::bad_name",
                    name.span.clone(),
                    format!("invalid environment name: {why}"),
                    "invalid name",
                );
            }
            let runtime = env.str(problems, "runtime");
            let is_local = match runtime.as_ref().map(|r| r.value) {
                Some("local") => true,
                Some("aws") => false,
                Some(other) => {
                    problems.at(
                        "berth::bad_value",
                        runtime.as_ref().map(|r| r.span.clone()).unwrap_or_default(),
                        format!("`runtime` must be \"local\" or \"aws\", not \"{other}\""),
                        "unknown runtime",
                    );
                    name.value == "local"
                }
                None => name.value == "local",
            };
            if runtime.is_none() && name.value != "local" && !env.mentions("runtime") {
                problems.push(
                    crate::diagnostics::Problem::new(
                        "berth::missing_key",
                        format!("environment `{}` needs a `runtime`", name.value),
                    )
                    .label(name.span.clone(), "which runtime?")
                    .help("add `runtime = \"aws\"` (with `region`) or `runtime = \"local\"`"),
                );
            }
            let kind = if is_local {
                EnvironmentKind::Local(local(&mut env, problems))
            } else {
                EnvironmentKind::Aws(aws(&mut env, problems))
            };
            env.finish(problems);
            environments.push(Environment {
                name: name.value.to_owned(),
                kind,
            });
        }
    }
    if !environments.iter().any(|e| e.name == "local") {
        environments.insert(
            0,
            Environment {
                name: "local".into(),
                kind: EnvironmentKind::Local(default_local()),
            },
        );
    }
    environments
}

fn local(env: &mut Table<'_, '_>, problems: &mut Problems) -> LocalEnvironment {
    let mut local = default_local();
    if let Some(listen) = env.str(problems, "listen") {
        match listen.value.parse::<SocketAddr>() {
            Ok(addr) => local.listen = addr,
            Err(_) => problems.push(
                crate::diagnostics::Problem::new(
                    "berth::bad_value",
                    format!("`listen` = \"{}\" is not an address", listen.value),
                )
                .label(listen.span, "expected IP:port")
                .help("for example \"127.0.0.1:8080\" or \"0.0.0.0:80\""),
            ),
        }
    }
    if let Some(dir) = env.text(problems, "state_dir") {
        local.state_dir = PathBuf::from(dir.value);
    }
    let interval = env.duration(
        problems,
        "health_check_interval",
        SECOND / 10,
        Duration::from_secs(300),
    );
    let timeout = env.duration(
        problems,
        "health_check_timeout",
        SECOND / 20,
        Duration::from_secs(120),
    );
    if let Some(i) = &interval {
        local.health_check_interval = i.value;
    }
    if let Some(t) = &timeout {
        local.health_check_timeout = t.value;
    }
    if local.health_check_timeout >= local.health_check_interval {
        let span = timeout
            .as_ref()
            .or(interval.as_ref())
            .map(|s| s.span.clone())
            .unwrap_or(env.span.clone());
        problems.push(
            crate::diagnostics::Problem::new(
                "berth::timeout_not_below_interval",
                "the local health-check timeout must be shorter than its interval",
            )
            .label(span, "not below the interval")
            .help(format!(
                "interval is {}, timeout is {}",
                crate::duration::format(local.health_check_interval),
                crate::duration::format(local.health_check_timeout)
            )),
        );
    }
    if let Some(v) = env.u32(problems, "healthy_threshold", 1, 10) {
        local.healthy_threshold = v.value;
    }
    if let Some(v) = env.u32(problems, "unhealthy_threshold", 1, 10) {
        local.unhealthy_threshold = v.value;
    }
    if let Some(v) = env.duration(
        problems,
        "deregistration_delay",
        Duration::ZERO,
        Duration::from_secs(3600),
    ) {
        local.deregistration_delay = v.value;
    }
    if let Some(v) = env.u32(problems, "log_group_max_mb", 1, 1_048_576) {
        local.log_group_max_mb = v.value;
    }
    if let Some(v) = env.duration(problems, "metric_period", SECOND / 10, 60 * SECOND) {
        local.metric_period = v.value;
    }
    local
}

fn aws(env: &mut Table<'_, '_>, problems: &mut Problems) -> AwsEnvironment {
    let region = match env.text(problems, "region") {
        Some(region) => {
            let ok = region.value.split('-').count() >= 3
                && region
                    .value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                problems.at(
                    "berth::bad_value",
                    region.span,
                    format!("\"{}\" is not an AWS Region", region.value),
                    "expected a Region like us-east-1",
                );
            }
            region.value
        }
        None => {
            if !env.mentions("region") {
                problems.at(
                    "berth::missing_key",
                    env.span.clone(),
                    format!("`{}.region` is required for an AWS environment", env.path),
                    "this environment needs `region`",
                );
            }
            String::new()
        }
    };
    let profile = env.text(problems, "profile").map(|p| p.value);
    let account_id = env.str(problems, "account_id").and_then(|id| {
        if id.value.len() == 12 && id.value.chars().all(|c| c.is_ascii_digit()) {
            Some(id.value.to_owned())
        } else {
            problems.at(
                "berth::bad_value",
                id.span,
                "`account_id` is an AWS account's 12 digits, as a string",
                "expected 12 digits",
            );
            None
        }
    });
    AwsEnvironment {
        region,
        profile,
        account_id,
    }
}
