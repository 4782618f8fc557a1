//! `[services.<name>]`: task definition, target group, routes, deployment, scaling.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use crate::diagnostics::Problem;
use crate::model::{
    Autoscaling, Build, CircuitBreaker, ContainerHealthCheck, Deployment, HealthCheck, Logs, Route,
    ScalingTarget, Service, Strategy,
};
use crate::reader::{Problems, Sp, Span, Table, as_table, type_name};
use crate::rules;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// A service with the spans the cross-section checks point at.
pub(crate) struct ServiceSpans {
    pub service: Service,
    pub name_span: Span,
    pub routes: Vec<(Sp<u32>, Sp<String>)>,
    pub secrets: Vec<(Sp<String>, Sp<String>)>,
    pub environment: Vec<Sp<String>>,
}

pub(crate) fn read(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    root: &Path,
) -> Vec<ServiceSpans> {
    let Some(table) = top.table(problems, "services") else {
        return Vec::new();
    };
    let mut services = Vec::new();
    for (name, node) in table.entries() {
        let Some(mut t) = as_table(problems, node, format!("services.{}", name.value)) else {
            continue;
        };
        if let Some(why) = rules::dns_label_problem(name.value, 32) {
            problems.at(
                "berth::bad_name",
                name.span.clone(),
                format!("invalid service name: {why}"),
                "invalid name",
            );
        }
        services.push(service(&mut t, problems, root, name));
        t.finish(problems);
    }
    services
}

fn named(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    key: &'static str,
    default: String,
    max: usize,
) -> String {
    match t.text(problems, key) {
        Some(v) => {
            if let Some(why) = rules::dns_label_problem(&v.value, max).filter(|_| max > 0) {
                problems.at(
                    "berth::bad_name",
                    v.span,
                    format!("invalid `{}.{key}`: {why}", t.path),
                    "invalid name",
                );
            }
            v.value
        }
        None => default,
    }
}

fn service(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    root: &Path,
    name: Sp<&str>,
) -> ServiceSpans {
    let n = name.value;
    let service_name = named(t, problems, "service_name", format!("{n}-service"), 255);
    let task_family = named(t, problems, "task_family", format!("{n}-task"), 255);
    let repository = match t.text(problems, "repository") {
        Some(r) => {
            let ok = r.value.len() >= 2
                && r.value.len() <= 256
                && r.value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
            if !ok {
                problems.at(
                    "berth::bad_name",
                    r.span,
                    "a repository name has 2 to 256 lowercase letters, digits, `.`, `_`, `-`, `/`",
                    "invalid repository name",
                );
            }
            r.value
        }
        None => format!("{n}-repo"),
    };
    let container_name = named(t, problems, "container_name", n.to_owned(), 255);
    let port = match t.u16(problems, "port", 1, 65535) {
        Some(p) => p.value,
        None => {
            if !t.mentions("port") {
                problems.at(
                    "berth::missing_key",
                    name.span.clone(),
                    format!("service `{n}` needs a `port` (the port its container listens on)"),
                    "no `port`",
                );
            }
            0
        }
    };
    let cpu = t.u32(problems, "cpu", 1, u32::MAX);
    let memory = t.u32(problems, "memory", 1, u32::MAX);
    fargate_size(problems, cpu.as_ref(), memory.as_ref());
    let desired_count = t.u32(problems, "desired_count", 0, 10_000);
    let build = t.table(problems, "build").and_then(|mut b| {
        let build = read_build(&mut b, problems, root);
        b.finish(problems);
        build
    });
    let target_group = named(t, problems, "target_group", format!("{n}-tg"), 32);
    let routes = read_routes(t, problems);
    let health_check = match t.table(problems, "health_check") {
        Some(mut h) => {
            let check = read_health_check(&mut h, problems);
            h.finish(problems);
            check
        }
        None => default_health_check(),
    };
    let container_health_check = t.table(problems, "container_health_check").map(|mut h| {
        let check = read_container_health_check(&mut h, problems);
        h.finish(problems);
        check
    });
    let environment = string_map(t, problems, "environment");
    let secrets = string_map(t, problems, "secrets");
    for (var, _) in environment.iter().chain(&secrets) {
        if !rules::env_name_ok(&var.value) {
            problems.at(
                "berth::bad_name",
                var.span.clone(),
                format!("`{}` is not an environment variable name", var.value),
                "letters, digits and `_`, not starting with a digit",
            );
        }
    }
    let logs = match t.table(problems, "logs") {
        Some(mut l) => {
            let logs = read_logs(&mut l, problems, n);
            l.finish(problems);
            logs
        }
        None => default_logs(n),
    };
    let deployment = match t.table(problems, "deployment") {
        Some(mut d) => {
            let deployment = read_deployment(
                &mut d,
                problems,
                desired_count.as_ref().map_or(2, |d| d.value),
            );
            d.finish(problems);
            deployment
        }
        None => default_deployment(),
    };
    let autoscaling = t.table(problems, "autoscaling").map(|mut a| {
        let scaling = read_autoscaling(&mut a, problems, desired_count.as_ref());
        a.finish(problems);
        scaling
    });
    let deregistration_delay = t
        .duration(
            problems,
            "deregistration_delay",
            Duration::ZERO,
            Duration::from_secs(3600),
        )
        .map_or(Duration::from_secs(300), |d| d.value);

    ServiceSpans {
        service: Service {
            name: n.to_owned(),
            service_name,
            task_family,
            repository,
            container_name,
            port,
            cpu: cpu.map_or(256, |c| c.value),
            memory: memory.map_or(512, |m| m.value),
            desired_count: desired_count.map_or(2, |d| d.value),
            build,
            target_group,
            routes: routes
                .iter()
                .map(|(p, path)| Route {
                    path: path.value.clone(),
                    priority: p.value,
                })
                .collect(),
            default_route: false,
            health_check,
            container_health_check,
            environment: environment
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect::<BTreeMap<_, _>>(),
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
            logs,
            deployment,
            autoscaling,
            deregistration_delay,
        },
        name_span: name.span,
        routes,
        environment: environment.into_iter().map(|(k, _)| k).collect(),
        secrets,
    }
}

fn fargate_size(problems: &mut Problems, cpu: Option<&Sp<u32>>, memory: Option<&Sp<u32>>) {
    let cpu_value = cpu.map_or(256, |c| c.value);
    let Some(allowed) = rules::fargate_memory_for(cpu_value) else {
        if let Some(cpu) = cpu {
            problems.push(
                Problem::new(
                    "berth::fargate_size",
                    format!("Fargate offers no task with {cpu_value} CPU units"),
                )
                .label(cpu.span.clone(), "not a Fargate CPU size")
                .help(format!(
                    "CPU units are one of {}",
                    rules::FARGATE_CPUS.map(|c| c.to_string()).join(", ")
                )),
            );
        }
        return;
    };
    let memory_value = memory.map_or(allowed[0].max(512), |m| m.value);
    if !allowed.contains(&memory_value) {
        let span = memory.or(cpu).map(|s| s.span.clone()).unwrap_or_default();
        let mut problem = Problem::new(
            "berth::fargate_size",
            format!("Fargate offers no task with {cpu_value} CPU units and {memory_value} MiB"),
        )
        .label(span, "not a Fargate pair");
        if let (Some(cpu), Some(_)) = (cpu, memory) {
            problem = problem.label(cpu.span.clone(), format!("{cpu_value} CPU units"));
        }
        let listed = if allowed.len() > 8 {
            format!(
                "{} to {} in steps of {}",
                allowed[0],
                allowed[allowed.len() - 1],
                allowed[1] - allowed[0]
            )
        } else {
            allowed
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        problems.push(problem.help(format!(
            "with {cpu_value} CPU units, memory is {listed} MiB"
        )));
    }
}

fn read_build(b: &mut Table<'_, '_>, problems: &mut Problems, root: &Path) -> Option<Build> {
    let context = b
        .text(problems, "context")
        .map_or_else(|| root.to_path_buf(), |c| root.join(c.value));
    let command = b.text(problems, "command");
    let artifact = b.text(problems, "artifact");
    for (key, value) in [("command", &command), ("artifact", &artifact)] {
        if value.is_none() && !b.mentions(key) {
            problems.at(
                "berth::missing_key",
                b.span.clone(),
                format!("`{}` needs `{key}`", b.path),
                format!("no `{key}`"),
            );
        }
    }
    Some(Build {
        context: normalize(&context),
        command: command?.value,
        artifact: normalize(&context.join(artifact?.value)),
    })
}

/// Removes `.` and `name/..` pairs without touching the file system.
fn normalize(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn read_routes(t: &mut Table<'_, '_>, problems: &mut Problems) -> Vec<(Sp<u32>, Sp<String>)> {
    let Some(array) = t.array(problems, "routes") else {
        return Vec::new();
    };
    let mut routes = Vec::new();
    for (i, item) in array.value.iter().enumerate() {
        let Some(mut r) = as_table(problems, item, format!("{}.routes[{i}]", t.path)) else {
            continue;
        };
        let path = r.text(problems, "path");
        let priority = r.u32(problems, "priority", 1, 50_000);
        if let Some(path) = &path
            && let Some(why) = rules::path_pattern_problem(&path.value)
        {
            problems.at(
                "berth::bad_route",
                path.span.clone(),
                why,
                "invalid path pattern",
            );
        }
        for (key, missing) in [("path", path.is_none()), ("priority", priority.is_none())] {
            if missing && !r.mentions(key) {
                problems.at(
                    "berth::missing_key",
                    item.span(),
                    format!("a route needs `{key}`"),
                    format!("no `{key}`"),
                );
            }
        }
        r.finish(problems);
        if let (Some(path), Some(priority)) = (path, priority) {
            routes.push((priority, path));
        }
    }
    routes
}

pub(crate) fn default_health_check() -> HealthCheck {
    HealthCheck {
        path: "/".into(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        healthy_threshold: 5,
        unhealthy_threshold: 2,
        matcher: "200".into(),
    }
}

fn read_health_check(h: &mut Table<'_, '_>, problems: &mut Problems) -> HealthCheck {
    let mut check = default_health_check();
    if let Some(path) = h.text(problems, "path") {
        if !path.value.starts_with('/') || path.value.len() > 1024 {
            problems.at(
                "berth::bad_value",
                path.span.clone(),
                "a health-check path starts with `/` (at most 1024 characters)",
                "invalid path",
            );
        }
        check.path = path.value;
    }
    let interval = h.duration(problems, "interval", 5 * SECOND, 300 * SECOND);
    let timeout = h.duration(problems, "timeout", 2 * SECOND, 120 * SECOND);
    if let Some(i) = &interval {
        check.interval = i.value;
    }
    if let Some(t) = &timeout {
        check.timeout = t.value;
    }
    timeout_below_interval(
        problems,
        "health check",
        check.timeout,
        check.interval,
        timeout.as_ref(),
        interval.as_ref(),
        h,
    );
    if let Some(v) = h.u32(problems, "healthy_threshold", 2, 10) {
        check.healthy_threshold = v.value;
    }
    if let Some(v) = h.u32(problems, "unhealthy_threshold", 2, 10) {
        check.unhealthy_threshold = v.value;
    }
    if let Some(m) = h.text(problems, "matcher") {
        let ok = m.value.split(',').all(|part| {
            let code = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .is_ok_and(|c| (200..=499).contains(&c))
            };
            match part.split_once('-') {
                Some((lo, hi)) => {
                    code(lo)
                        && code(hi)
                        && lo.trim().parse::<u16>().ok() <= hi.trim().parse::<u16>().ok()
                }
                None => code(part),
            }
        });
        if !ok {
            problems.push(
                Problem::new(
                    "berth::bad_value",
                    format!("`{}` is not a status-code matcher", m.value),
                )
                .label(m.span.clone(), "invalid matcher")
                .help("codes from 200 to 499: \"200\", \"200,202\" or \"200-299\""),
            );
        }
        check.matcher = m.value;
    }
    check
}

fn timeout_below_interval(
    problems: &mut Problems,
    what: &str,
    timeout: Duration,
    interval: Duration,
    timeout_sp: Option<&Sp<Duration>>,
    interval_sp: Option<&Sp<Duration>>,
    t: &Table<'_, '_>,
) {
    if timeout < interval {
        return;
    }
    let mut problem = Problem::new(
        "berth::timeout_not_below_interval",
        format!(
            "the {what} timeout ({}) must be shorter than its interval ({})",
            crate::duration::format(timeout),
            crate::duration::format(interval)
        ),
    );
    match (timeout_sp, interval_sp) {
        (Some(t), Some(i)) => {
            problem = problem
                .label(t.span.clone(), "timeout")
                .label(i.span.clone(), "interval")
        }
        (Some(t), None) => {
            problem = problem.label(t.span.clone(), "not below the default interval")
        }
        (None, Some(i)) => problem = problem.label(i.span.clone(), "not above the default timeout"),
        (None, None) => problem = problem.label(t.span.clone(), ""),
    }
    problems
        .push(problem.help("a check that may take longer than its interval overlaps the next one"));
}

fn read_container_health_check(
    h: &mut Table<'_, '_>,
    problems: &mut Problems,
) -> ContainerHealthCheck {
    let command = match h.strings(problems, "command") {
        Some(cmd) => {
            let parts: Vec<String> = cmd.value.into_iter().map(|s| s.value).collect();
            let ok = match parts.first().map(String::as_str) {
                Some("CMD") => parts.len() >= 2,
                Some("CMD-SHELL") => parts.len() == 2,
                _ => false,
            };
            if !ok {
                problems.push(
                    Problem::new("berth::bad_value", "a container health check's command starts with \"CMD\" or \"CMD-SHELL\"")
                        .label(cmd.span, "invalid command")
                        .help("for example [\"CMD-SHELL\", \"curl -f http://localhost:3001/health || exit 1\"]"),
                );
            }
            parts
        }
        None => {
            if !h.mentions("command") {
                problems.at(
                    "berth::missing_key",
                    h.span.clone(),
                    format!("`{}` needs `command`", h.path),
                    "no `command`",
                );
            }
            Vec::new()
        }
    };
    let interval = h.duration(problems, "interval", 5 * SECOND, 300 * SECOND);
    let timeout = h.duration(problems, "timeout", 2 * SECOND, 60 * SECOND);
    let interval_v = interval.as_ref().map_or(30 * SECOND, |i| i.value);
    let timeout_v = timeout.as_ref().map_or(5 * SECOND, |t| t.value);
    timeout_below_interval(
        problems,
        "container health check",
        timeout_v,
        interval_v,
        timeout.as_ref(),
        interval.as_ref(),
        h,
    );
    ContainerHealthCheck {
        command,
        interval: interval_v,
        timeout: timeout_v,
        retries: h.u32(problems, "retries", 1, 10).map_or(3, |r| r.value),
        start_period: h
            .duration(problems, "start_period", Duration::ZERO, 300 * SECOND)
            .map(|s| s.value),
    }
}

fn string_map(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    key: &'static str,
) -> Vec<(Sp<String>, Sp<String>)> {
    let Some(map) = t.table(problems, key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, node) in map.entries() {
        match node.get_ref() {
            DeValue::String(s) => out.push((
                Sp::new(name.value.to_owned(), name.span),
                Sp::new(s.to_string(), node.span()),
            )),
            other => {
                let mut problem = Problem::new(
                    "berth::wrong_type",
                    format!(
                        "`{}.{}` must be a string, not {}",
                        map.path,
                        name.value,
                        type_name(other)
                    ),
                )
                .label(node.span(), "expected a string");
                if key == "environment"
                    && matches!(
                        other,
                        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)
                    )
                {
                    problem = problem.help("environment values are strings: quote it");
                }
                if key == "secrets" && matches!(other, DeValue::Table(_)) {
                    problem = problem.help("a secret names a parameter (`DB_PASSWORD = \"/app/DB_PASSWORD\"`); its value lives in the parameter store");
                }
                problems.push(problem);
            }
        }
    }
    // Entries are read directly: nothing to report as unknown.
    out
}

pub(crate) fn default_logs(service: &str) -> Logs {
    Logs {
        group: format!("/ecs/{service}"),
        retention_days: Some(30),
        stream_prefix: "ecs".into(),
    }
}

fn read_logs(l: &mut Table<'_, '_>, problems: &mut Problems, service: &str) -> Logs {
    let mut logs = default_logs(service);
    if let Some(group) = l.text(problems, "group") {
        if let Some(why) = rules::log_group_problem(&group.value) {
            problems.at(
                "berth::bad_name",
                group.span.clone(),
                why,
                "invalid log group name",
            );
        }
        logs.group = group.value;
    }
    if let Some(days) = l.u32(problems, "retention_days", 0, u32::MAX) {
        if days.value == 0 {
            logs.retention_days = None;
        } else if rules::LOG_RETENTION_DAYS.contains(&days.value) {
            logs.retention_days = Some(days.value);
        } else {
            let nearest = rules::LOG_RETENTION_DAYS
                .iter()
                .min_by_key(|d| d.abs_diff(days.value))
                .copied()
                .unwrap_or(30);
            problems.push(
                Problem::new(
                    "berth::log_retention",
                    format!("CloudWatch Logs cannot keep logs for {} days", days.value),
                )
                .label(days.span, format!("did you mean {nearest}?"))
                .help(format!(
                    "retention_days is one of {} (or 0 to keep logs forever)",
                    rules::LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
                )),
            );
        }
    }
    if let Some(prefix) = l.text(problems, "stream_prefix") {
        if prefix.value.contains([':', '*']) || prefix.value.len() > 256 {
            problems.at(
                "berth::bad_name",
                prefix.span.clone(),
                "a stream prefix cannot contain `:` or `*`",
                "invalid prefix",
            );
        }
        logs.stream_prefix = prefix.value;
    }
    logs
}

pub(crate) fn default_deployment() -> Deployment {
    Deployment {
        strategy: Strategy::Rolling,
        minimum_healthy_percent: 100,
        maximum_percent: 200,
        circuit_breaker: CircuitBreaker {
            enable: true,
            rollback: true,
        },
        health_check_grace_period: Duration::ZERO,
        stop_timeout: 30 * SECOND,
    }
}

fn read_deployment(d: &mut Table<'_, '_>, problems: &mut Problems, desired: u32) -> Deployment {
    let mut deployment = default_deployment();
    let strategy = d.str(problems, "strategy");
    let bake_time = d.duration(problems, "bake_time", Duration::ZERO, 1440 * MINUTE);
    let canary_percent = d.number(problems, "canary_percent", 0.1, 100.0);
    let canary_bake = d.duration(problems, "canary_bake", Duration::ZERO, 1440 * MINUTE);
    let linear_step = d.number(problems, "linear_step_percent", 3.0, 100.0);
    let linear_bake = d.duration(problems, "linear_bake", Duration::ZERO, 1440 * MINUTE);
    let kind = strategy.as_ref().map_or("rolling", |s| s.value);
    let bake = bake_time.as_ref().map_or(5 * MINUTE, |b| b.value);
    deployment.strategy = match kind {
        "rolling" => Strategy::Rolling,
        "blue_green" => Strategy::BlueGreen { bake_time: bake },
        "canary" => Strategy::Canary {
            percent: canary_percent.as_ref().map_or(5.0, |p| p.value),
            canary_bake: canary_bake.as_ref().map_or(10 * MINUTE, |b| b.value),
            bake_time: bake,
        },
        "linear" => Strategy::Linear {
            step_percent: linear_step.as_ref().map_or(10.0, |p| p.value),
            step_bake: linear_bake.as_ref().map_or(6 * MINUTE, |b| b.value),
            bake_time: bake,
        },
        other => {
            let span = strategy
                .as_ref()
                .map(|s| s.span.clone())
                .unwrap_or_default();
            problems.push(
                Problem::new(
                    "berth::bad_value",
                    format!("\"{other}\" is not a deployment strategy"),
                )
                .label(span, "unknown strategy")
                .maybe_help(
                    crate::reader::did_you_mean(
                        other,
                        ["rolling", "blue_green", "canary", "linear"],
                    )
                    .map(|s| format!("did you mean \"{s}\"?"))
                    .or_else(|| {
                        Some(
                            "strategy is \"rolling\", \"blue_green\", \"canary\" or \"linear\""
                                .into(),
                        )
                    }),
                ),
            );
            Strategy::Rolling
        }
    };
    let known = ["rolling", "blue_green", "canary", "linear"].contains(&kind);
    let misplaced: [(&str, Option<Span>, &[&str]); 5] = [
        (
            "bake_time",
            bake_time.map(|s| s.span),
            &["blue_green", "canary", "linear"],
        ),
        (
            "canary_percent",
            canary_percent.map(|s| s.span),
            &["canary"],
        ),
        ("canary_bake", canary_bake.map(|s| s.span), &["canary"]),
        (
            "linear_step_percent",
            linear_step.map(|s| s.span),
            &["linear"],
        ),
        ("linear_bake", linear_bake.map(|s| s.span), &["linear"]),
    ];
    for (key, span, applies) in misplaced {
        if let Some(span) = span
            && known
            && !applies.contains(&kind)
        {
            problems.push(
                Problem::new(
                    "berth::misplaced_key",
                    format!("`{key}` does not apply to the \"{kind}\" strategy"),
                )
                .label(span, "ignored by this strategy")
                .help(format!(
                    "it applies to strategy = {}; remove it or change the strategy",
                    applies
                        .iter()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )),
            );
        }
    }
    let min = d.u32(problems, "minimum_healthy_percent", 0, 100);
    let max = d.u32(problems, "maximum_percent", 100, 400);
    deployment.minimum_healthy_percent = min.as_ref().map_or(100, |m| m.value);
    deployment.maximum_percent = max.as_ref().map_or(200, |m| m.value);
    // S1.7: with both bounds at `desired`, the scheduler can neither stop nor start a task.
    let min_tasks =
        (u64::from(desired) * u64::from(deployment.minimum_healthy_percent)).div_ceil(100);
    let max_tasks = u64::from(desired) * u64::from(deployment.maximum_percent) / 100;
    if desired > 0 && min_tasks >= u64::from(desired) && max_tasks <= u64::from(desired) {
        let mut problem = Problem::new(
            "berth::stuck_deployment",
            format!(
                "with {desired} tasks, {}% minimum healthy and {}% maximum, a deployment can neither stop nor start a task",
                deployment.minimum_healthy_percent, deployment.maximum_percent
            ),
        );
        for sp in [min.as_ref(), max.as_ref()].into_iter().flatten() {
            problem = problem.label(sp.span.clone(), "");
        }
        if problem.labels.is_empty() {
            problem = problem.label(d.span.clone(), "");
        }
        problems.push(problem.help("lower minimum_healthy_percent or raise maximum_percent"));
    }
    if let Some(cb) = d.table(problems, "circuit_breaker") {
        let mut cb = cb;
        deployment.circuit_breaker = CircuitBreaker {
            enable: cb.bool(problems, "enable").unwrap_or(true),
            rollback: cb.bool(problems, "rollback").unwrap_or(true),
        };
        cb.finish(problems);
    }
    if let Some(g) = d.duration(
        problems,
        "health_check_grace_period",
        Duration::ZERO,
        Duration::from_secs(2_147_483_647),
    ) {
        deployment.health_check_grace_period = g.value;
    }
    if let Some(s) = d.duration(problems, "stop_timeout", 2 * SECOND, 120 * SECOND) {
        deployment.stop_timeout = s.value;
    }
    deployment
}

fn read_autoscaling(
    a: &mut Table<'_, '_>,
    problems: &mut Problems,
    desired: Option<&Sp<u32>>,
) -> Autoscaling {
    let min = a.u32(problems, "min", 0, 10_000);
    let max = a.u32(problems, "max", 1, 10_000);
    let (min_v, max_v) = (
        min.as_ref().map_or(1, |m| m.value),
        max.as_ref().map_or(1, |m| m.value),
    );
    for (key, value) in [("min", &min), ("max", &max)] {
        if value.is_none() && !a.mentions(key) {
            problems.at(
                "berth::missing_key",
                a.span.clone(),
                format!("`{}` needs `{key}`", a.path),
                format!("no `{key}`"),
            );
        }
    }
    if let (Some(min), Some(max)) = (&min, &max)
        && min.value > max.value
    {
        problems.push(
            Problem::new("berth::bad_value", "autoscaling `min` is above `max`")
                .label(min.span.clone(), "min")
                .label(max.span.clone(), "max"),
        );
    }
    if let (Some(d), Some(_), Some(_)) = (desired, &min, &max)
        && (d.value < min_v || d.value > max_v)
    {
        problems.push(
            Problem::new(
                "berth::bad_value",
                format!(
                    "desired_count {} is outside autoscaling's {min_v}..{max_v}",
                    d.value
                ),
            )
            .label(d.span.clone(), "outside min..max")
            .help("autoscaling would move it at once; set desired_count within the range"),
        );
    }
    let target = match a.table(problems, "target") {
        Some(mut t) => {
            let cpu = t.number(problems, "cpu_percent", 1.0, 100.0);
            let memory = t.number(problems, "memory_percent", 1.0, 100.0);
            let requests = t.u32(problems, "requests_per_target", 1, 1_000_000);
            let given: Vec<Span> = [
                cpu.as_ref().map(|s| s.span.clone()),
                memory.as_ref().map(|s| s.span.clone()),
                requests.as_ref().map(|s| s.span.clone()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let any_key = ["cpu_percent", "memory_percent", "requests_per_target"]
                .iter()
                .any(|k| t.mentions(k));
            if given.len() > 1 {
                let mut problem =
                    Problem::new("berth::bad_value", "autoscaling tracks one target metric");
                for span in &given {
                    problem = problem.label(span.clone(), "");
                }
                problems.push(
                    problem.help("keep one of cpu_percent, memory_percent, requests_per_target"),
                );
            } else if given.is_empty() && !any_key {
                problems.push(
                    Problem::new("berth::missing_key", "autoscaling needs a target metric")
                        .label(t.span.clone(), "no metric")
                        .help("add cpu_percent, memory_percent or requests_per_target"),
                );
            }
            t.finish(problems);
            match (cpu, memory, requests) {
                (Some(c), _, _) => ScalingTarget::CpuPercent(c.value),
                (_, Some(m), _) => ScalingTarget::MemoryPercent(m.value),
                (_, _, Some(r)) => ScalingTarget::RequestsPerTarget(r.value),
                _ => ScalingTarget::CpuPercent(70.0),
            }
        }
        None => {
            if !a.mentions("target") {
                problems.push(
                    Problem::new(
                        "berth::missing_key",
                        format!("`{}` needs a `target`", a.path),
                    )
                    .label(a.span.clone(), "no target")
                    .help("for example target = { cpu_percent = 70 }"),
                );
            }
            ScalingTarget::CpuPercent(70.0)
        }
    };
    Autoscaling {
        min: min_v,
        max: max_v,
        target,
        scale_in_cooldown: a
            .duration(
                problems,
                "scale_in_cooldown",
                Duration::ZERO,
                Duration::from_secs(86_400),
            )
            .map_or(300 * SECOND, |d| d.value),
        scale_out_cooldown: a
            .duration(
                problems,
                "scale_out_cooldown",
                Duration::ZERO,
                Duration::from_secs(86_400),
            )
            .map_or(300 * SECOND, |d| d.value),
    }
}
