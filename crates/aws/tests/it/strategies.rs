//! Blue/green, canary and linear services on AWS: what `up` provisions for them (the
//! alternate target group, the production rule, the test listener with its rule and port,
//! the infrastructure role) against moto; what a deploy asks ECS for and how its rollout is
//! watched (lifecycle stages, a rollback during the bake) against the fake of the service
//! calls, since moto reports no deployment configuration and runs no rollout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::types::{self as ecs, ServiceDeploymentStatus as S};
use berth_aws::{
    Action, DeploymentRecord, Error, Event, Progress, RolledBack, ServiceRequest, silent,
};
use berth_spec::status::DeploymentStrategy;
use berth_spec::{Stack, Strategy, TrafficWiring};
use berth_testkit::Moto;

use crate::deploy::{ready, watching};
use crate::lifecycle::{down, fast, up};
use crate::service_fake::engine_with_fake;
use crate::support::{engine, example_stack, sdk_config};

const TEST_PORT: u16 = 8081;

/// The example stack with the backend blue/green (and a test listener) and the frontend,
/// the listener's default service, canary.
fn shifting_stack() -> Stack {
    let mut stack = example_stack();
    for s in &mut stack.services {
        let (strategy, test_listener_port) = match s.name.as_str() {
            "backend" => (
                Strategy::BlueGreen {
                    bake_time: Duration::from_secs(300),
                },
                Some(TEST_PORT),
            ),
            _ => (Strategy::defaults("canary").expect("canary"), None),
        };
        s.deployment.strategy = strategy;
        s.deployment.traffic = Some(TrafficWiring {
            alternate_target_group: format!("{}-alt", s.target_group),
            test_listener_port,
            hooks: BTreeMap::new(),
            hook_timeout: Duration::from_secs(3600),
        });
    }
    stack
}

type Elb = aws_sdk_elasticloadbalancingv2::Client;

async fn tg_arn(elb: &Elb, name: &str) -> Option<String> {
    let found = elb.describe_target_groups().names(name).send().await.ok()?;
    found
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .map(str::to_owned)
}

/// One rule: (priority, path, the target group it forwards to (the heaviest), rule ARN,
/// every group with its weight).
type Rule = (String, String, String, String, Vec<(String, i32)>);

/// The listener on `port` of the stack's ALB: its ARN and its rules.
async fn listener(elb: &Elb, port: i32) -> (String, Vec<Rule>) {
    let lb = elb
        .describe_load_balancers()
        .names("ecs-alb")
        .send()
        .await
        .expect("the ALB");
    let lb = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb)
        .send()
        .await
        .expect("listeners");
    let l = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port))
        .unwrap_or_else(|| panic!("no listener on {port}"));
    let arn = l.listener_arn().unwrap().to_owned();
    let rules = elb
        .describe_rules()
        .listener_arn(&arn)
        .send()
        .await
        .expect("rules");
    let rules = rules
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .map(|r| {
            // berth writes one path pattern per rule.
            let condition = &r.conditions()[0];
            let path = match condition.path_pattern_config() {
                Some(p) => p.values().join(","),
                None => condition.values().join(","),
            };
            let action = &r.actions()[0];
            let mut weights: Vec<(String, i32)> = action
                .forward_config()
                .map(|f| {
                    f.target_groups()
                        .iter()
                        .map(|t| {
                            let arn = t.target_group_arn().unwrap_or("").to_owned();
                            (arn, t.weight().unwrap_or(1))
                        })
                        .collect()
                })
                .unwrap_or_default();
            weights.sort_by_key(|(_, w)| std::cmp::Reverse(*w));
            let target = action
                .target_group_arn()
                .map(str::to_owned)
                .or_else(|| weights.first().map(|(arn, _)| arn.clone()))
                .unwrap_or_default();
            let rule = r.rule_arn().unwrap_or("");
            let priority = r.priority().unwrap_or("");
            (priority.into(), path, target, rule.into(), weights)
        })
        .collect();
    (arn, rules)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_provisions_what_traffic_shifting_needs_and_down_removes_it() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = shifting_stack();
    let engine = engine(&stack, &sdk).await;

    // Visible in the plan before anything exists.
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for id in [
        "tg/backend/alternate",
        "tg/frontend/alternate",
        "listener/test/backend",
        "role/ecs-infrastructure",
    ] {
        assert!(ids.contains(&id), "{id} not in {ids:?}");
    }

    ready(&sdk, &engine, &stack).await;
    let elb = Elb::new(&sdk);
    let backend_tg = tg_arn(&elb, "backend-tg").await.expect("backend-tg");
    let backend_alt = tg_arn(&elb, "backend-tg-alt")
        .await
        .expect("backend-tg-alt");
    let frontend_tg = tg_arn(&elb, "frontend-tg").await.expect("frontend-tg");
    let frontend_alt = tg_arn(&elb, "frontend-tg-alt")
        .await
        .expect("frontend-tg-alt");
    // The alternate group checks health as the primary does.
    let groups = elb
        .describe_target_groups()
        .target_group_arns(&backend_tg)
        .target_group_arns(&backend_alt)
        .send()
        .await
        .expect("groups");
    let checks: Vec<_> = groups
        .target_groups()
        .iter()
        .map(|t| {
            (
                t.health_check_path().map(str::to_owned),
                t.health_check_interval_seconds(),
                t.port(),
            )
        })
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0], checks[1]);
    assert_eq!(checks[0].0.as_deref(), Some("/api/health"));

    // Production: the backend's route and, for the default service, a catch-all rule last.
    let (_, http_rules) = listener(&elb, 80).await;
    let rule = |priority: &str| {
        http_rules
            .iter()
            .find(|r| r.0 == priority)
            .unwrap_or_else(|| panic!("no rule {priority}: {http_rules:?}"))
            .clone()
    };
    let backend_rule = rule("100");
    assert_eq!(
        (backend_rule.1.as_str(), backend_rule.2.as_str()),
        ("/api/*", backend_tg.as_str())
    );
    // Weighted, the alternate group at 0: the shape whose weights ECS moves.
    assert_eq!(
        backend_rule.4,
        [(backend_tg.clone(), 100), (backend_alt.clone(), 0)]
    );
    let catch_all = rule("50000");
    assert_eq!(
        (catch_all.1.as_str(), catch_all.2.as_str()),
        ("/*", frontend_tg.as_str())
    );
    // The test listener: one rule to blue, which ECS moves at TEST_TRAFFIC_SHIFT.
    let (_, test_rules) = listener(&elb, i32::from(TEST_PORT)).await;
    assert_eq!(test_rules.len(), 1, "{test_rules:?}");
    assert_eq!(
        (test_rules[0].0.as_str(), test_rules[0].2.as_str()),
        ("1", backend_tg.as_str())
    );
    // Its port is open on the ALB's group.
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let groups = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-name")
                .values("ALB-SG")
                .build(),
        )
        .send()
        .await
        .expect("ALB-SG");
    let ports: Vec<i32> = groups.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter_map(|p| p.from_port())
        .collect();
    assert!(ports.contains(&i32::from(TEST_PORT)), "{ports:?}");
    // The role ECS assumes, with AWS's managed policy for load balancers.
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .get_role()
        .role_name("ecs-production-ecs-infrastructure")
        .send()
        .await
        .expect("the infrastructure role");
    let role_arn = role.role().unwrap().arn().to_owned();
    let trust = role
        .role()
        .unwrap()
        .assume_role_policy_document()
        .unwrap_or("");
    assert!(trust.contains("ecs.amazonaws.com"), "{trust}");
    let attached = iam
        .list_attached_role_policies()
        .role_name("ecs-production-ecs-infrastructure")
        .send()
        .await
        .expect("policies");
    let attached: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(
        attached,
        ["arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"]
    );

    // The services are bound to both groups, their rules and the role.
    let ecs_client = aws_sdk_ecs::Client::new(&sdk);
    let services = ecs_client
        .describe_services()
        .cluster(&stack.cluster)
        .services("backend-service")
        .services("frontend-service")
        .send()
        .await
        .expect("services");
    let advanced = |name: &str| {
        let s = services
            .services()
            .iter()
            .find(|s| s.service_name() == Some(name))
            .unwrap_or_else(|| panic!("{name}"));
        let lb = &s.load_balancers()[0];
        let a = lb.advanced_configuration().expect("advanced configuration");
        (
            lb.target_group_arn().map(str::to_owned),
            a.alternate_target_group_arn().map(str::to_owned),
            a.production_listener_rule().map(str::to_owned),
            a.test_listener_rule().map(str::to_owned),
            a.role_arn().map(str::to_owned),
        )
    };
    assert_eq!(
        advanced("backend-service"),
        (
            Some(backend_tg.clone()),
            Some(backend_alt.clone()),
            Some(backend_rule.3.clone()),
            Some(test_rules[0].3.clone()),
            Some(role_arn.clone()),
        )
    );
    assert_eq!(
        advanced("frontend-service"),
        (
            Some(frontend_tg.clone()),
            Some(frontend_alt.clone()),
            Some(catch_all.3.clone()),
            None,
            Some(role_arn.clone()),
        )
    );

    // A second up has nothing to do.
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // Rules ECS moved to the alternate group (or weighted) are still the stack's: no change.
    elb.modify_rule()
        .rule_arn(&backend_rule.3)
        .actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&backend_alt)
                .build(),
        )
        .send()
        .await
        .expect("modify rule");
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // A deploy through the SDK: UpdateService carries the strategy and the binding (moto
    // reports no deployment configuration, so its recorder shows the request).
    moto.start_recording();
    let deployed = engine
        .deploy(&stack, "backend", None, None, &silent())
        .await
        .expect("deploy");
    let update = update_service_body(&moto.recording(), "backend-service");
    assert_eq!(
        update["taskDefinition"].as_str(),
        Some(deployed.task_definition.as_str())
    );
    let d = &update["deploymentConfiguration"];
    assert_eq!(
        (d["strategy"].as_str(), d["bakeTimeInMinutes"].as_i64()),
        (Some("BLUE_GREEN"), Some(5))
    );
    let a = &update["loadBalancers"][0]["advancedConfiguration"];
    assert_eq!(
        a["alternateTargetGroupArn"].as_str(),
        Some(backend_alt.as_str())
    );
    assert_eq!(
        a["productionListenerRule"].as_str(),
        Some(backend_rule.3.as_str())
    );
    assert_eq!(a["roleArn"].as_str(), Some(role_arn.as_str()));

    // `status` shows both groups of each service (green registers in the alternate one).
    let status = engine.status(&stack).await.expect("status");
    let mut groups: Vec<(&str, &str)> = status
        .target_groups
        .iter()
        .map(|g| (g.service.as_str(), g.name.as_str()))
        .collect();
    groups.sort_unstable();
    assert_eq!(
        groups,
        [
            ("backend-service", "backend-tg"),
            ("backend-service", "backend-tg-alt"),
            ("frontend-service", "frontend-tg"),
            ("frontend-service", "frontend-tg-alt"),
        ]
    );

    // Back to rolling while ECS has the backend's rule on the alternate group: the rule
    // goes back to the service's own group, the binding loses its advanced configuration,
    // then the alternate group and the test listener go (the role stays: the frontend
    // still shifts).
    let mut rolling = stack.clone();
    let backend = rolling
        .services
        .iter_mut()
        .find(|s| s.name == "backend")
        .expect("backend");
    backend.deployment.strategy = Strategy::Rolling;
    backend.deployment.traffic = None;
    let (_, _, plan) = engine.plan_up(&rolling).await.expect("plan");
    let mut steps: Vec<String> = plan
        .steps
        .iter()
        .map(|s| {
            let action = match s.action {
                Action::Create => "create",
                Action::Update(_) => "update",
                Action::Delete => "delete",
            };
            format!("{} {action}", s.id)
        })
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        [
            "listener/http update",
            "listener/test/backend delete",
            "service/backend update",
            "sg/alb update",
            "tg/backend/alternate delete",
        ],
        "{plan}"
    );
    up(&engine, &rolling, fast())
        .await
        .expect("back to rolling");
    let (_, _, plan) = engine.plan_up(&rolling).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");
    let (_, http_rules) = listener(&elb, 80).await;
    let backend_rule = http_rules.iter().find(|r| r.0 == "100").expect("rule 100");
    assert_eq!(backend_rule.2, backend_tg);
    assert_eq!(tg_arn(&elb, "backend-tg-alt").await, None);

    // Down removes all of it.
    down(&engine, &rolling, fast()).await;
    let (snapshot, _, _) = engine.plan_down(&stack).await.expect("plan down");
    assert_eq!(snapshot.actual, Vec::new());
    assert_eq!(tg_arn(&elb, "backend-tg-alt").await, None);
    assert!(
        iam.get_role()
            .role_name("ecs-production-ecs-infrastructure")
            .send()
            .await
            .is_err()
    );
}

/// The JSON body of the last UpdateService of `service` in moto's recording.
fn update_service_body(recording: &str, service: &str) -> serde_json::Value {
    recording
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| {
            entry["headers"]["X-Amz-Target"]
                .as_str()
                .or_else(|| entry["headers"]["x-amz-target"].as_str())
                .is_some_and(|t| t.ends_with(".UpdateService"))
        })
        .filter_map(|entry| {
            let body = entry["body"].as_str()?;
            let body = if entry["body_encoded"].as_bool() == Some(true) {
                String::from_utf8(aws_smithy_types::base64::decode(body).ok()?).ok()?
            } else {
                body.to_owned()
            };
            serde_json::from_str::<serde_json::Value>(&body).ok()
        })
        .rfind(|body| body["service"].as_str() == Some(service))
        .unwrap_or_else(|| panic!("no UpdateService of {service} recorded:\n{recording}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_hooks_are_refused_before_any_call() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let mut stack = shifting_stack();
    if let Some(t) = stack.services[1].deployment.traffic.as_mut() {
        t.hooks.insert(
            "POST_TEST_TRAFFIC_SHIFT".into(),
            "curl -f localhost:8081".into(),
        );
    }
    let engine = engine(&stack, &sdk).await;
    engine.recorder().clear();
    let refused = engine.plan_up(&stack).await.expect_err("hooks");
    assert!(matches!(refused, Error::Unsupported(_)), "{refused:?}");
    let text = refused.to_string();
    assert!(
        text.contains(
            "`services.backend.deployment.hooks.post_test_traffic_shift` is a shell command"
        ),
        "{text}"
    );
    assert!(engine.recorder().calls().is_empty());
}

fn record(task_definition: &str, status: S, stage: Option<&str>, reason: &str) -> DeploymentRecord {
    // One deployment per revision here: named after it.
    let revision = task_definition.rsplit(':').next().unwrap_or("0");
    DeploymentRecord {
        arn: format!(
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/ecs-cluster/backend-service/r{revision}"
        ),
        status,
        task_definition: task_definition.to_owned(),
        created_at: None,
        finished_at: None,
        reason: reason.to_owned(),
        lifecycle_stage: stage.map(str::to_owned),
    }
}

/// The last update of `name` the fake received.
fn last_update(calls: &[(&'static str, Option<ServiceRequest>)], name: &str) -> ServiceRequest {
    calls
        .iter()
        .rev()
        .find_map(|(call, r)| r.clone().filter(|r| *call == "update" && r.name == name))
        .unwrap_or_else(|| panic!("no update of {name}"))
}

/// A progress receiver that keeps what the watch said it waits for.
fn waits() -> (Progress, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let progress: Progress = Arc::new(move |e| {
        if let Event::Waiting { what, .. } = e {
            keep.lock().unwrap().push(what);
        }
    });
    (progress, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_carry_the_strategy_and_a_rollback_during_the_bake_fails_them() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = shifting_stack();
    let (fake, engine) = engine_with_fake(&sdk, &stack).await;
    ready(&sdk, &engine, &stack).await;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // Blue/green from the file: BLUE_GREEN with its bake, and the binding kept.
    let deployed = engine
        .deploy(&stack, "backend", None, None, &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.strategy, DeploymentStrategy::BlueGreen);
    let previous = deployed.task_definition.clone();
    let request = last_update(&fake.calls(), "backend-service");
    assert_eq!(request.task_definition, deployed.task_definition);
    let d = &request.deployment;
    assert_eq!(d.strategy(), Some(&ecs::DeploymentStrategy::BlueGreen));
    assert_eq!(d.bake_time_in_minutes(), Some(5));
    let lb = request.load_balancer.as_ref().expect("the binding");
    let a = lb.advanced_configuration().expect("advanced configuration");
    let elb = Elb::new(&sdk);
    assert_eq!(
        a.alternate_target_group_arn(),
        tg_arn(&elb, "backend-tg-alt").await.as_deref()
    );
    assert!(a.test_listener_rule().is_some());

    // ECS rolls it back during BAKE_TIME: the deploy fails with the stage and the reason,
    // once the rollback has ended.
    let td = deployed.task_definition.clone();
    fake.script_history([
        vec![record(&td, S::InProgress, Some("SCALE_UP"), "")],
        vec![record(&td, S::InProgress, Some("BAKE_TIME"), "")],
        vec![record(
            &td,
            S::RollbackInProgress,
            Some("PRODUCTION_TRAFFIC_SHIFT"),
            "",
        )],
        vec![record(
            &td,
            S::RollbackSuccessful,
            None,
            "Service deployment rolled back because of a failed alarm",
        )],
    ]);
    let (progress, seen) = waits();
    match engine
        .watch_rollout(&stack, "backend", &deployed, watching(), &progress)
        .await
    {
        Err(Error::Rollout {
            revision, reason, ..
        }) => {
            assert_eq!(revision, deployed.revision);
            assert!(
                reason.contains("rolled it back during BAKE_TIME"),
                "{reason}"
            );
            assert!(reason.contains("failed alarm"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "rolled out (SCALE_UP)",
            "rolled out (BAKE_TIME)",
            "rolled back (ROLLBACK_IN_PROGRESS during BAKE_TIME)",
        ]
    );

    // --strategy canary once: ECS's canary defaults, watched to SUCCESSFUL by stage.
    let deployed = engine
        .deploy(&stack, "backend", None, Some("canary"), &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.strategy, DeploymentStrategy::Canary);
    let request = last_update(&fake.calls(), "backend-service");
    let d = &request.deployment;
    assert_eq!(d.strategy(), Some(&ecs::DeploymentStrategy::Canary));
    let c = d.canary_configuration().expect("canary configuration");
    assert_eq!(
        (
            c.canary_percent(),
            c.canary_bake_time_in_minutes(),
            d.bake_time_in_minutes()
        ),
        (Some(5.0), Some(10), Some(5))
    );
    let td = deployed.task_definition.clone();
    fake.script_history([
        vec![record(&td, S::Pending, None, "")],
        vec![record(
            &td,
            S::InProgress,
            Some("PRODUCTION_TRAFFIC_SHIFT"),
            "",
        )],
        vec![record(&td, S::InProgress, Some("BAKE_TIME"), "")],
        vec![record(&td, S::Successful, None, "")],
    ]);
    let (progress, seen) = waits();
    engine
        .watch_rollout(&stack, "backend", &deployed, watching(), &progress)
        .await
        .expect("completed");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "rolled out (PENDING)",
            "rolled out (PRODUCTION_TRAFFIC_SHIFT)",
            "rolled out (BAKE_TIME)",
        ]
    );

    // A settled blue/green service rolled back: its previous revision deployed again, and
    // watched past that revision's earlier, SUCCESSFUL deployment.
    let settled = vec![
        DeploymentRecord {
            arn: "arn:d3".into(),
            ..record(&deployed.task_definition, S::Successful, None, "")
        },
        DeploymentRecord {
            arn: "arn:d2".into(),
            ..record(&previous, S::Successful, None, "")
        },
    ];
    fake.set_history(settled.clone());
    let started = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect("rollback");
    let RolledBack::Redeployed(again) = &started else {
        panic!("{started:?}")
    };
    assert_eq!(again.task_definition, previous);
    assert_eq!(again.strategy, DeploymentStrategy::BlueGreen);
    let again_record = |status, stage| DeploymentRecord {
        arn: "arn:d4".into(),
        ..record(&previous, status, stage, "")
    };
    fake.script_history([
        settled.clone(),
        vec![
            again_record(S::InProgress, Some("BAKE_TIME")),
            settled[0].clone(),
            settled[1].clone(),
        ],
        vec![
            again_record(S::Successful, None),
            settled[0].clone(),
            settled[1].clone(),
        ],
    ]);
    let (progress, seen) = waits();
    engine
        .watch_rollback(&stack, "backend", &started, watching(), &progress)
        .await
        .expect("rolled back");
    assert_eq!(
        *seen.lock().unwrap(),
        ["listed by ECS", "rolled out (BAKE_TIME)"]
    );
    fake.script_history([]);
    fake.set_history(Vec::new());

    // --strategy linear on the frontend (a canary service): ECS's linear defaults, through
    // the catch-all rule.
    let deployed = engine
        .deploy(&stack, "frontend", None, Some("linear"), &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.strategy, DeploymentStrategy::Linear);
    let request = last_update(&fake.calls(), "frontend-service");
    let d = &request.deployment;
    assert_eq!(d.strategy(), Some(&ecs::DeploymentStrategy::Linear));
    let l = d.linear_configuration().expect("linear configuration");
    assert_eq!(
        (l.step_percent(), l.step_bake_time_in_minutes()),
        (Some(10.0), Some(6))
    );
    let a = request
        .load_balancer
        .as_ref()
        .and_then(|l| l.advanced_configuration())
        .expect("advanced configuration");
    let (_, rules) = listener(&elb, 80).await;
    let catch_all = rules.iter().find(|r| r.0 == "50000").expect("catch-all");
    assert_eq!(a.production_listener_rule(), Some(catch_all.3.as_str()));
    assert_eq!(a.test_listener_rule(), None);
}
