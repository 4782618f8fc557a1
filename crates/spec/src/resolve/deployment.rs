//! A service's `deployment` table.
use std::time::Duration;

use crate::diagnostics::Problem;
use crate::model::{CircuitBreaker, Deployment, Strategy};
use crate::reader::{Problems, Span, Table};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

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

pub(crate) fn read_deployment(
    d: &mut Table<'_, '_>,
    problems: &mut Problems,
    desired: u32,
) -> Deployment {
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
    if let (Some(strategy), true) = (&strategy, known && kind != "rolling") {
        problems.push(not_supported_yet(
            format!("the \"{kind}\" strategy"),
            strategy.span.clone(),
            "use strategy = \"rolling\" (the default) until it is",
        ));
    }
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

/// What the stack file accepts is acted upon: a part of it that no runtime carries out yet is
/// refused rather than read and ignored.
fn not_supported_yet(what: String, span: Span, help: &str) -> Problem {
    Problem::new(
        "berth::not_supported_yet",
        format!("{what} is not supported yet"),
    )
    .label(span, "not supported yet")
    .help(help.to_owned())
}
