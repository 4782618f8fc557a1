//! A service's `autoscaling` table: target tracking (ECS-SEMANTICS §6), carried out by the
//! embedded runtime's scaler.
use std::time::Duration;

use crate::diagnostics::Problem;
use crate::model::{Autoscaling, ScalingTarget};
use crate::reader::{Problems, Sp, Span, Table};

const SECOND: Duration = Duration::from_secs(1);

pub(crate) fn read_autoscaling(
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
        if value.is_none() {
            a.missing(problems, key);
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
