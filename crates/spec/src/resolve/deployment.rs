//! A service's `deployment` table.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::diagnostics::Problem;
use crate::model::{CircuitBreaker, Deployment, Strategy, TrafficWiring};
use crate::reader::{Problems, Sp, Span, Table};
use crate::rules;

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
        traffic: None,
    }
}

/// The lifecycle stages a hook may attach to, as stack-file keys (S3.11: not `SCALE_UP`,
/// `BAKE_TIME` or `CLEAN_UP`).
const HOOK_STAGES: [&str; 7] = [
    "pre_scale_up",
    "post_scale_up",
    "test_traffic_shift",
    "post_test_traffic_shift",
    "pre_production_traffic_shift",
    "production_traffic_shift",
    "post_production_traffic_shift",
];

/// ECS's default hook timeout, 1440 minutes (S3.12).
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(1440 * 60);

/// `<target_group>-alt`, shortened to the 32 characters a target group name may have.
pub(crate) fn derived_alternate(target_group: &str) -> String {
    let keep = target_group.len().min(32 - "-alt".len());
    format!("{}-alt", target_group[..keep].trim_end_matches('-'))
}

/// The traffic-shifting strategies' wiring keys; the caller reports them as misplaced under
/// `rolling`.
struct WiringKeys {
    alternate: Option<Sp<String>>,
    test_port: Option<Sp<u16>>,
    hooks: Option<(Span, BTreeMap<String, String>)>,
    hook_timeout: Option<Sp<Duration>>,
}

fn read_wiring(d: &mut Table<'_, '_>, problems: &mut Problems) -> WiringKeys {
    let alternate = d.text(problems, "alternate_target_group");
    if let Some(a) = &alternate
        && let Some(why) = rules::dns_label_problem(&a.value, 32)
    {
        problems.at(
            "berth::bad_name",
            a.span.clone(),
            format!("invalid `{}.alternate_target_group`: {why}", d.path),
            "invalid name",
        );
    }
    let test_port = d.u16(problems, "test_listener_port", 1, 65535);
    let hooks = d.table(problems, "hooks").map(|mut h| {
        let mut hooks = BTreeMap::new();
        for stage in HOOK_STAGES {
            if let Some(command) = h.text(problems, stage) {
                hooks.insert(stage.to_ascii_uppercase(), command.value);
            }
        }
        for stage in ["scale_up", "bake_time", "clean_up"] {
            if let Some(span) = h.key_span(stage) {
                h.get(stage);
                problems.push(
                    Problem::new(
                        "berth::bad_value",
                        format!("a lifecycle hook cannot attach to `{stage}`"),
                    )
                    .label(span, "no hook at this stage")
                    .help(format!("hooks attach to {}", HOOK_STAGES.join(", "))),
                );
            }
        }
        let span = h.span.clone();
        h.finish(problems);
        (span, hooks)
    });
    let hook_timeout = d.duration(problems, "hook_timeout", MINUTE, 20_160 * MINUTE);
    WiringKeys {
        alternate,
        test_port,
        hooks,
        hook_timeout,
    }
}

pub(crate) fn read_deployment(
    d: &mut Table<'_, '_>,
    problems: &mut Problems,
    desired: u32,
    target_group: &str,
) -> Deployment {
    let mut deployment = default_deployment();
    let strategy = d.str(problems, "strategy");
    let bake_time = d.duration(problems, "bake_time", Duration::ZERO, 1440 * MINUTE);
    let canary_percent = d.number(problems, "canary_percent", 0.1, 100.0);
    let canary_bake = d.duration(problems, "canary_bake", Duration::ZERO, 1440 * MINUTE);
    let linear_step = d.number(problems, "linear_step_percent", 3.0, 100.0);
    let linear_bake = d.duration(problems, "linear_bake", Duration::ZERO, 1440 * MINUTE);
    let wiring = read_wiring(d, problems);
    let kind = strategy.as_ref().map_or("rolling", |s| s.value);
    let bake = bake_time.as_ref().map(|b| b.value);
    deployment.strategy = match Strategy::defaults(kind) {
        Some(Strategy::Rolling) => Strategy::Rolling,
        Some(Strategy::BlueGreen { bake_time }) => Strategy::BlueGreen {
            bake_time: bake.unwrap_or(bake_time),
        },
        Some(Strategy::Canary {
            percent,
            canary_bake: cb,
            bake_time,
        }) => Strategy::Canary {
            percent: canary_percent.as_ref().map_or(percent, |p| p.value),
            canary_bake: canary_bake.as_ref().map_or(cb, |b| b.value),
            bake_time: bake.unwrap_or(bake_time),
        },
        Some(Strategy::Linear {
            step_percent,
            step_bake,
            bake_time,
        }) => Strategy::Linear {
            step_percent: linear_step.as_ref().map_or(step_percent, |p| p.value),
            step_bake: linear_bake.as_ref().map_or(step_bake, |b| b.value),
            bake_time: bake.unwrap_or(bake_time),
        },
        None => {
            let other = kind;
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
    let shifting: &[&str] = &["blue_green", "canary", "linear"];
    if known && kind != "rolling" {
        deployment.traffic = Some(TrafficWiring {
            alternate_target_group: wiring
                .alternate
                .as_ref()
                .map_or_else(|| derived_alternate(target_group), |a| a.value.clone()),
            test_listener_port: wiring.test_port.as_ref().map(|p| p.value),
            hooks: wiring
                .hooks
                .as_ref()
                .map(|(_, h)| h.clone())
                .unwrap_or_default(),
            hook_timeout: wiring
                .hook_timeout
                .as_ref()
                .map_or(DEFAULT_HOOK_TIMEOUT, |t| t.value),
        });
    }
    if let Some(a) = &wiring.alternate
        && a.value == target_group
    {
        problems.push(
            Problem::new(
                "berth::bad_value",
                "the alternate target group must differ from the service's target group",
            )
            .label(a.span.clone(), "same as `target_group`")
            .help("green's tasks register here while blue's stay in `target_group`"),
        );
    }
    let misplaced: [(&str, Option<Span>, &[&str]); 9] = [
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
        (
            "alternate_target_group",
            wiring.alternate.map(|s| s.span),
            shifting,
        ),
        (
            "test_listener_port",
            wiring.test_port.map(|s| s.span),
            shifting,
        ),
        ("hooks", wiring.hooks.map(|(span, _)| span), shifting),
        (
            "hook_timeout",
            wiring.hook_timeout.map(|s| s.span),
            shifting,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alternate_target_group_name_is_derived_within_32_characters() {
        assert_eq!(derived_alternate("web-tg"), "web-tg-alt");
        let long = "a".repeat(27) + "-bcde";
        let derived = derived_alternate(&long);
        assert_eq!(derived, format!("{}-alt", "a".repeat(27)));
        assert!(rules::dns_label_problem(&derived, 32).is_none());
    }
}
