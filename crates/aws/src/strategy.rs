//! ECS's native deployment strategies (S3.1–S3.7): ROLLING, and BLUE_GREEN, CANARY and
//! LINEAR, which shift traffic between a service's two target groups through its production
//! listener rule. Pure: what a service is created and updated with, from the stack file's
//! keys the local runtime reads too (`bake_time`, `canary_percent`, `canary_bake`,
//! `linear_step_percent`, `linear_bake`, `alternate_target_group`, `test_listener_port`).
//!
//! What AWS takes differently from the file, and how:
//! - bakes are whole minutes on ECS; a bake given in seconds is rounded up (the file's
//!   `"90s"` bakes 2 minutes), so a service never bakes shorter than asked;
//! - percents are multiples of 0.1 (rounded to the nearest);
//! - hooks are `sh -c` commands locally; ECS runs Lambda functions, so a stack with hooks is
//!   refused on AWS before any call ([`refuse_unsupported`]), never deployed without them.

use std::time::Duration;

use aws_sdk_ecs::types as ecs;
use berth_spec::status::DeploymentStrategy;
use berth_spec::{Deployment, Service, Stack, Strategy};

use crate::error::{Error, Result};

/// The priority of the rule berth adds for a traffic-shifting default service (its traffic
/// otherwise goes through the listener's default action, and ECS moves a rule): the last
/// one an ALB allows, so every route of the file comes first.
pub const CATCH_ALL_PRIORITY: u32 = 50_000;

/// The priority of the one rule of a test listener.
pub const TEST_RULE_PRIORITY: u32 = 1;

/// Whether `strategy` shifts traffic (needs the alternate target group and the rules).
pub fn shifts(strategy: &Strategy) -> bool {
    !matches!(strategy, Strategy::Rolling)
}

/// The strategy in the status vocabulary.
pub fn kind(strategy: &Strategy) -> DeploymentStrategy {
    match strategy {
        Strategy::Rolling => DeploymentStrategy::Rolling,
        Strategy::BlueGreen { .. } => DeploymentStrategy::BlueGreen,
        Strategy::Canary { .. } => DeploymentStrategy::Canary,
        Strategy::Linear { .. } => DeploymentStrategy::Linear,
    }
}

/// Whole minutes, rounded up.
fn minutes(d: Duration) -> i32 {
    i32::try_from(d.as_secs().div_ceil(60)).unwrap_or(i32::MAX)
}

/// The nearest multiple of 0.1.
fn tenths(percent: f64) -> f64 {
    (percent * 10.0).round() / 10.0
}

/// The deployment configuration a service is created or updated with.
pub fn deployment_configuration(
    d: &Deployment,
    strategy: &Strategy,
) -> ecs::DeploymentConfiguration {
    let b = ecs::DeploymentConfiguration::builder()
        .minimum_healthy_percent(i32::try_from(d.minimum_healthy_percent).unwrap_or(100))
        .maximum_percent(i32::try_from(d.maximum_percent).unwrap_or(200))
        .deployment_circuit_breaker(
            ecs::DeploymentCircuitBreaker::builder()
                .enable(d.circuit_breaker.enable)
                .rollback(d.circuit_breaker.rollback)
                .build(),
        );
    let b = match strategy {
        Strategy::Rolling => b.strategy(ecs::DeploymentStrategy::Rolling),
        Strategy::BlueGreen { bake_time } => b
            .strategy(ecs::DeploymentStrategy::BlueGreen)
            .bake_time_in_minutes(minutes(*bake_time)),
        Strategy::Canary {
            percent,
            canary_bake,
            bake_time,
        } => b
            .strategy(ecs::DeploymentStrategy::Canary)
            .bake_time_in_minutes(minutes(*bake_time))
            .canary_configuration(
                ecs::CanaryConfiguration::builder()
                    .canary_percent(tenths(*percent))
                    .canary_bake_time_in_minutes(minutes(*canary_bake))
                    .build(),
            ),
        Strategy::Linear {
            step_percent,
            step_bake,
            bake_time,
        } => b
            .strategy(ecs::DeploymentStrategy::Linear)
            .bake_time_in_minutes(minutes(*bake_time))
            .linear_configuration(
                ecs::LinearConfiguration::builder()
                    .step_percent(tenths(*step_percent))
                    .step_bake_time_in_minutes(minutes(*step_bake))
                    .build(),
            ),
    };
    b.build()
}

/// A deployment configuration's strategy as the plan shows it (`CANARY 5% for 10m, bake
/// 5m`); one without a strategy is ROLLING, ECS's default.
pub fn strategy_text(c: &ecs::DeploymentConfiguration) -> String {
    let bake = c.bake_time_in_minutes().unwrap_or(0);
    match c.strategy() {
        None | Some(ecs::DeploymentStrategy::Rolling) => "ROLLING".to_owned(),
        Some(ecs::DeploymentStrategy::BlueGreen) => format!("BLUE_GREEN, bake {bake}m"),
        Some(ecs::DeploymentStrategy::Canary) => {
            let canary = c.canary_configuration();
            format!(
                "CANARY {}% for {}m, bake {bake}m",
                canary.and_then(|c| c.canary_percent()).unwrap_or(0.0),
                canary
                    .and_then(|c| c.canary_bake_time_in_minutes())
                    .unwrap_or(0)
            )
        }
        Some(ecs::DeploymentStrategy::Linear) => {
            let linear = c.linear_configuration();
            format!(
                "LINEAR {}% every {}m, bake {bake}m",
                linear.and_then(|c| c.step_percent()).unwrap_or(0.0),
                linear
                    .and_then(|c| c.step_bake_time_in_minutes())
                    .unwrap_or(0)
            )
        }
        Some(other) => other.as_str().to_owned(),
    }
}

/// The physical names ECS needs to shift a service's traffic (S3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    /// The alternate (green) target group's ARN.
    pub alternate_target_group: String,
    /// The ARN of the listener rule that carries the service's production traffic.
    pub production_rule: String,
    /// The ARN of the test listener's rule, when the stack asks for a test listener.
    pub test_rule: Option<String>,
    /// The infrastructure role that lets ECS change the rules and target groups.
    pub role: String,
}

/// The service's load balancer binding: its container behind `target_group` (an ARN), with
/// the advanced configuration of a traffic-shifting strategy when `wiring` is given.
pub fn load_balancer(
    service: &Service,
    target_group: String,
    wiring: Option<Wiring>,
) -> ecs::LoadBalancer {
    let b = ecs::LoadBalancer::builder()
        .target_group_arn(target_group)
        .container_name(&service.container_name)
        .container_port(i32::from(service.port));
    let b = match wiring {
        Some(w) => b.advanced_configuration(
            ecs::AdvancedConfiguration::builder()
                .alternate_target_group_arn(w.alternate_target_group)
                .production_listener_rule(w.production_rule)
                .set_test_listener_rule(w.test_rule)
                .role_arn(w.role)
                .build(),
        ),
        None => b,
    };
    b.build()
}

/// The strategy a deploy uses: the file's, or `kind` (`berth deploy --strategy`) with the
/// file's parameters when it names the same one and ECS's defaults otherwise. Only between
/// strategies the service is provisioned for: a rolling service has no alternate target
/// group or production rule to shift with (`berth up` makes them once the file says so).
pub fn chosen(service: &Service, kind: Option<&str>) -> Result<Strategy> {
    let file = &service.deployment.strategy;
    let Some(kind) = kind.filter(|k| *k != file.kind()) else {
        return Ok(file.clone());
    };
    let strategy = Strategy::defaults(kind).ok_or_else(|| {
        Error::Unsupported(format!(
            "\"{kind}\" is not a deployment strategy: rolling, blue_green, canary or linear"
        ))
    })?;
    if shifts(&strategy) && !shifts(file) {
        return Err(Error::Unsupported(format!(
            "service {}: --strategy {kind} needs the alternate target group and the production listener rule, which a rolling service does not have on AWS; set `deployment.strategy = \"{kind}\"` in the stack file and run `berth up` first",
            service.name
        )));
    }
    Ok(strategy)
}

/// The listener rule that carries `service`'s production traffic, as (priority, path): its
/// one route, or for the default service without routes a catch-all rule berth adds.
/// `None` for a service with several routes (ECS moves one rule).
pub fn production_rule(stack: &Stack, service: &Service) -> Option<(u32, String)> {
    match service.routes.as_slice() {
        [route] => Some((route.priority, route.path.clone())),
        [] if stack
            .default_service()
            .is_some_and(|d| d.name == service.name) =>
        {
            Some((CATCH_ALL_PRIORITY, "/*".to_owned()))
        }
        _ => None,
    }
}

/// What the stack file accepts and ECS cannot carry out is refused before any AWS call,
/// rather than deployed as something else: hooks (shell commands, which ECS cannot run: it
/// calls Lambda functions), a traffic-shifting service without exactly one production rule,
/// and one behind two listeners that both route (ECS moves one rule).
pub fn refuse_unsupported(stack: &Stack) -> Result<()> {
    let mut problems = Vec::new();
    for service in stack
        .services
        .iter()
        .filter(|s| shifts(&s.deployment.strategy))
    {
        if let Some(traffic) = &service.deployment.traffic {
            for stage in traffic.hooks.keys() {
                problems.push(format!(
                    "`services.{}.deployment.hooks.{}` is a shell command, which ECS cannot run (its lifecycle hooks call Lambda functions); remove it for this environment",
                    service.name,
                    stage.to_ascii_lowercase()
                ));
            }
        }
        if stack
            .load_balancer
            .https
            .as_ref()
            .is_some_and(|h| !h.redirect_http)
        {
            problems.push(format!(
                "service {}: with `load_balancer.https.redirect_http = false` both listeners route, and ECS moves one production rule (the HTTPS listener's), so HTTP traffic would stay on the old target group; let HTTP redirect, or use strategy = \"rolling\"",
                service.name
            ));
        }
        if production_rule(stack, service).is_none() {
            let why = if service.routes.is_empty() {
                "it has no route and is not the default service".to_owned()
            } else {
                format!("it has {} routes", service.routes.len())
            };
            problems.push(format!(
                "service {}: the \"{}\" strategy shifts traffic through one listener rule and {why}",
                service.name,
                service.deployment.strategy.kind()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "the AWS engine cannot carry out this stack file: {}",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn stack(deployment: &str) -> Stack {
        let text = format!(
            "[stack]\nname = \"demo\"\n[services.web]\nport = 80\ndeployment = {deployment}\n"
        );
        berth_spec::parse(&text, "berth.toml", Path::new("/app")).unwrap()
    }

    fn config(strategy: Strategy) -> ecs::DeploymentConfiguration {
        let d = stack("{ strategy = \"rolling\" }").services[0]
            .deployment
            .clone();
        deployment_configuration(&d, &strategy)
    }

    #[test]
    fn each_strategy_becomes_ecs_deployment_configuration() {
        let rolling = config(Strategy::Rolling);
        assert_eq!(rolling.strategy(), Some(&ecs::DeploymentStrategy::Rolling));
        assert_eq!(rolling.bake_time_in_minutes(), None);
        assert_eq!(
            rolling
                .deployment_circuit_breaker()
                .map(|c| (c.enable(), c.rollback())),
            Some((true, true))
        );
        assert_eq!(
            (rolling.minimum_healthy_percent(), rolling.maximum_percent()),
            (Some(100), Some(200))
        );

        let blue_green = config(Strategy::BlueGreen {
            bake_time: 7 * MINUTE,
        });
        assert_eq!(
            blue_green.strategy(),
            Some(&ecs::DeploymentStrategy::BlueGreen)
        );
        assert_eq!(blue_green.bake_time_in_minutes(), Some(7));
        assert!(blue_green.canary_configuration().is_none());
        assert!(blue_green.linear_configuration().is_none());
        assert!(blue_green.deployment_circuit_breaker().is_some());

        // Seconds round up to whole minutes; percents to tenths.
        let canary = config(Strategy::Canary {
            percent: 12.34,
            canary_bake: Duration::from_secs(90),
            bake_time: Duration::ZERO,
        });
        assert_eq!(canary.strategy(), Some(&ecs::DeploymentStrategy::Canary));
        assert_eq!(canary.bake_time_in_minutes(), Some(0));
        let c = canary.canary_configuration().expect("canary configuration");
        assert_eq!(
            (c.canary_percent(), c.canary_bake_time_in_minutes()),
            (Some(12.3), Some(2))
        );
        assert!(canary.linear_configuration().is_none());

        let linear = config(Strategy::Linear {
            step_percent: 25.0,
            step_bake: 3 * MINUTE,
            bake_time: 10 * MINUTE,
        });
        assert_eq!(linear.strategy(), Some(&ecs::DeploymentStrategy::Linear));
        assert_eq!(linear.bake_time_in_minutes(), Some(10));
        let l = linear.linear_configuration().expect("linear configuration");
        assert_eq!(
            (l.step_percent(), l.step_bake_time_in_minutes()),
            (Some(25.0), Some(3))
        );
        assert!(linear.canary_configuration().is_none());

        let texts: Vec<String> = [&rolling, &blue_green, &canary, &linear]
            .into_iter()
            .map(strategy_text)
            .collect();
        assert_eq!(
            texts,
            [
                "ROLLING",
                "BLUE_GREEN, bake 7m",
                "CANARY 12.3% for 2m, bake 0m",
                "LINEAR 25% every 3m, bake 10m",
            ]
        );
        // A service that never had a strategy set is ROLLING (ECS's default).
        assert_eq!(
            strategy_text(&ecs::DeploymentConfiguration::builder().build()),
            "ROLLING"
        );
    }

    #[test]
    fn a_shifting_service_binds_both_target_groups_its_rules_and_the_role() {
        let stack = stack("{ strategy = \"blue_green\", test_listener_port = 9000 }");
        let service = &stack.services[0];
        let wiring = Wiring {
            alternate_target_group: "arn:tg/web-tg-alt".into(),
            production_rule: "arn:listener-rule/app/demo/1/2/3".into(),
            test_rule: Some("arn:listener-rule/app/demo/1/9/4".into()),
            role: "arn:aws:iam::1:role/demo-ecs-infrastructure".into(),
        };
        let lb = load_balancer(service, "arn:tg/web-tg".into(), Some(wiring.clone()));
        assert_eq!(lb.target_group_arn(), Some("arn:tg/web-tg"));
        assert_eq!(lb.container_name(), Some(service.container_name.as_str()));
        assert_eq!(lb.container_port(), Some(80));
        let a = lb.advanced_configuration().expect("advanced configuration");
        assert_eq!(
            (
                a.alternate_target_group_arn(),
                a.production_listener_rule(),
                a.test_listener_rule(),
                a.role_arn()
            ),
            (
                Some(wiring.alternate_target_group.as_str()),
                Some(wiring.production_rule.as_str()),
                wiring.test_rule.as_deref(),
                Some(wiring.role.as_str())
            )
        );
        let plain = load_balancer(service, "arn:tg/web-tg".into(), None);
        assert!(plain.advanced_configuration().is_none());
        // The default service without routes shifts through the catch-all rule.
        assert_eq!(
            production_rule(&stack, service),
            Some((CATCH_ALL_PRIORITY, "/*".to_owned()))
        );
    }

    #[test]
    fn hooks_are_refused_naming_the_key_and_rolling_passes() {
        assert!(refuse_unsupported(&stack("{ strategy = \"rolling\" }")).is_ok());
        assert!(refuse_unsupported(&stack("{ strategy = \"canary\" }")).is_ok());
        let error = refuse_unsupported(&stack(
            "{ strategy = \"blue_green\", hooks = { post_test_traffic_shift = \"curl -f http://localhost:9000/\" } }",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(
                "`services.web.deployment.hooks.post_test_traffic_shift` is a shell command"
            ),
            "{error}"
        );
        // Two listeners that route: ECS would move only one of them.
        let mut both = stack("{ strategy = \"linear\" }");
        both.load_balancer.https = Some(berth_spec::Https {
            port: 443,
            certificate_arn: "arn:aws:acm:us-east-1:1:certificate/x".into(),
            redirect_http: false,
        });
        let error = refuse_unsupported(&both).unwrap_err().to_string();
        assert!(error.contains("both listeners route"), "{error}");
        both.load_balancer.https.as_mut().unwrap().redirect_http = true;
        assert!(refuse_unsupported(&both).is_ok());
    }

    #[test]
    fn strategy_override_is_limited_to_what_the_service_is_provisioned_for() {
        let canary = stack("{ strategy = \"canary\", canary_percent = 20 }");
        let service = &canary.services[0];
        assert_eq!(chosen(service, None).unwrap(), service.deployment.strategy);
        assert_eq!(
            chosen(service, Some("canary")).unwrap(),
            service.deployment.strategy
        );
        assert_eq!(
            chosen(service, Some("linear")).unwrap(),
            Strategy::defaults("linear").unwrap()
        );
        assert_eq!(chosen(service, Some("rolling")).unwrap(), Strategy::Rolling);
        let rolling = stack("{ strategy = \"rolling\" }");
        let error = chosen(&rolling.services[0], Some("blue_green"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("a rolling service does not have"), "{error}");
    }
}
