//! `[services.<name>]`: task definition, target group, routes, deployment, scaling.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::{autoscaling, deployment, health};
use crate::diagnostics::Problem;
use crate::model::{Build, Image, ImageBuild, Logs, Route, Service};
use crate::reader::{Problems, Sp, Span, Table, as_table, type_name};
use crate::rules;

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
    let (build, built_image) = match t.table(problems, "build") {
        Some(mut b) => {
            let builds = read_build(&mut b, problems, root);
            b.finish(problems);
            builds
        }
        None => (None, None),
    };
    let image = match (t.text(problems, "image"), built_image) {
        (Some(reference), Some(_)) => {
            problems.at(
                "berth::conflicting_keys",
                reference.span,
                format!("service `{n}` has both `image` and `build.dockerfile`: keep one"),
                "a second image",
            );
            None
        }
        (Some(reference), None) => {
            if let Some(why) = rules::image_reference_problem(&reference.value) {
                problems.at(
                    "berth::bad_image",
                    reference.span,
                    format!("invalid image reference: {why}"),
                    "invalid image reference",
                );
            }
            Some(Image::Reference(reference.value))
        }
        (None, built) => built.map(Image::Dockerfile),
    };
    let target_group = named(t, problems, "target_group", format!("{n}-tg"), 32);
    let routes = read_routes(t, problems);
    let health_check = match t.table(problems, "health_check") {
        Some(mut h) => {
            let check = health::read_health_check(&mut h, problems);
            h.finish(problems);
            check
        }
        None => health::default_health_check(),
    };
    let container_health_check = t.table(problems, "container_health_check").map(|mut h| {
        let check = health::read_container_health_check(&mut h, problems);
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
            let deployment = deployment::read_deployment(
                &mut d,
                problems,
                desired_count.as_ref().map_or(2, |d| d.value),
                &target_group,
            );
            d.finish(problems);
            deployment
        }
        None => deployment::default_deployment(),
    };
    let autoscaling = t.table(problems, "autoscaling").map(|mut a| {
        let scaling = autoscaling::read_autoscaling(&mut a, problems, desired_count.as_ref());
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
            image,
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

/// The `build` table: a process build (`command` + `artifact`), an image build
/// (`dockerfile`, with `target` and `args`), or both, sharing `context`.
fn read_build(
    b: &mut Table<'_, '_>,
    problems: &mut Problems,
    root: &Path,
) -> (Option<Build>, Option<ImageBuild>) {
    let context = b
        .text(problems, "context")
        .map_or_else(|| root.to_path_buf(), |c| root.join(c.value));
    let context = normalize(&context);
    let command = b.text(problems, "command");
    let artifact = b.text(problems, "artifact");
    let run = b.strings(problems, "run");
    let dockerfile = b.text(problems, "dockerfile");
    let target = b.text(problems, "target");
    let args = string_map(b, problems, "args");
    let image = if b.mentions("dockerfile") {
        read_image_build(problems, &context, dockerfile, target, args)
    } else {
        let stray = [
            ("target", target.map(|t| t.span)),
            ("args", args.first().map(|(k, _)| k.span.clone())),
        ];
        for (key, span) in stray
            .into_iter()
            .filter_map(|(key, span)| Some((key, span?)))
        {
            problems.at(
                "berth::needs_dockerfile",
                span,
                format!(
                    "`{}.{key}` applies to an image build: add `dockerfile`",
                    b.path
                ),
                "without `dockerfile`",
            );
        }
        None
    };
    let process = if b.mentions("command")
        || b.mentions("artifact")
        || b.mentions("run")
        || image.is_none()
    {
        for (key, value) in [("command", &command), ("artifact", &artifact)] {
            if value.is_none() {
                b.missing(problems, key);
            }
        }
        let run = run.and_then(|run| read_run(problems, &b.path, run));
        if let Some(artifact) = artifact.as_ref().filter(|a| a.value.ends_with('/'))
            && !b.mentions("run")
        {
            problems.push(
                Problem::new(
                    "berth::missing_key",
                    format!(
                        "`{}.artifact` is a directory: add `run`, the command to run in it",
                        b.path
                    ),
                )
                .label(artifact.span.clone(), "a directory")
                .help("for example run = [\"node\", \"server.js\"]"),
            );
        }
        command.zip(artifact).map(|(command, artifact)| Build {
            artifact: normalize(&context.join(artifact.value)),
            context: context.clone(),
            command: command.value,
            run,
        })
    } else {
        None
    };
    (process, image)
}

/// `run`: a program, then its arguments.
fn read_run(problems: &mut Problems, path: &str, run: Sp<Vec<Sp<String>>>) -> Option<Vec<String>> {
    if run
        .value
        .first()
        .is_none_or(|program| program.value.is_empty())
    {
        problems.push(
            Problem::new(
                "berth::bad_value",
                format!("`{path}.run` starts with the program to run in the artifact directory"),
            )
            .label(run.span, "no program")
            .help("for example run = [\"python3\", \"server.py\"]"),
        );
        return None;
    }
    Some(run.value.into_iter().map(|arg| arg.value).collect())
}

fn read_image_build(
    problems: &mut Problems,
    context: &Path,
    dockerfile: Option<Sp<String>>,
    target: Option<Sp<String>>,
    args: Vec<(Sp<String>, Sp<String>)>,
) -> Option<ImageBuild> {
    if let Some(target) = &target
        && !rules::is_stage_name(&target.value)
    {
        problems.at(
            "berth::bad_name",
            target.span.clone(),
            "a build stage name has letters, digits, `-`, `_` and `.`, and starts with a letter",
            "invalid stage name",
        );
    }
    for (name, _) in &args {
        if !rules::env_name_ok(&name.value) {
            problems.at(
                "berth::bad_name",
                name.span.clone(),
                "a build argument's name has letters, digits and `_`, and does not start with a digit",
                "invalid build argument",
            );
        }
    }
    Some(ImageBuild {
        dockerfile: normalize(&context.join(dockerfile?.value)),
        context: context.to_path_buf(),
        target: target.map(|t| t.value),
        args: args.into_iter().map(|(k, v)| (k.value, v.value)).collect(),
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
            && let Some(why) = rules::path_pattern_problem(&path.value).or_else(|| {
                rules::path_pattern_never_matches(&path.value).then(|| {
                    "a path pattern not starting with `/` or a wildcard never matches".to_owned()
                })
            })
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
