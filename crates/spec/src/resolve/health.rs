//! Target-group and container health checks.
use std::time::Duration;

use crate::diagnostics::Problem;
use crate::model::{ContainerHealthCheck, HealthCheck};
use crate::reader::{Problems, Sp, Table};

const SECOND: Duration = Duration::from_secs(1);

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

pub(crate) fn read_health_check(h: &mut Table<'_, '_>, problems: &mut Problems) -> HealthCheck {
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

pub(crate) fn read_container_health_check(
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
            h.missing(problems, "command");
            Vec::new()
        }
    };
    let interval = h.duration(problems, "interval", 5 * SECOND, 300 * SECOND);
    let timeout = h.duration(problems, "timeout", 2 * SECOND, 60 * SECOND);
    // Unlike a target group's, a container health check may have a timeout at or above its
    // interval: ECS accepts it (the next check waits for the one running).
    let interval_v = interval.as_ref().map_or(30 * SECOND, |i| i.value);
    let timeout_v = timeout.as_ref().map_or(5 * SECOND, |t| t.value);
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
