//! Application Auto Scaling against moto: a service's scalable target and target-tracking
//! policy are created, found again (an idle `up` makes no call), changed, removed with
//! their table, and deleted by `down`. moto emulates scalable targets and policies
//! faithfully (reference/moto.md); the scaling itself (CloudWatch alarms moving the count)
//! is AWS's and not tested here.

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{MetricType, ScalingPolicy, ServiceNamespace};
use berth_spec::{Autoscaling, ScalingTarget};
use berth_testkit::Moto;

use crate::lifecycle::{down, fast, push_image, up};
use crate::support::{engine, example_stack, plan_lines, sdk_config};

fn scaling(min: u32, max: u32, target: ScalingTarget) -> Option<Autoscaling> {
    Some(Autoscaling {
        min,
        max,
        target,
        scale_in_cooldown: Duration::from_secs(120),
        scale_out_cooldown: Duration::from_secs(30),
    })
}

/// (resource id, min, max) of every scalable ECS target, sorted.
async fn targets(client: &aws_sdk_applicationautoscaling::Client) -> Vec<(String, i32, i32)> {
    let out = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await
        .expect("describe scalable targets");
    let mut found: Vec<_> = out
        .scalable_targets()
        .iter()
        .map(|t| {
            (
                t.resource_id().to_owned(),
                t.min_capacity(),
                t.max_capacity(),
            )
        })
        .collect();
    found.sort();
    found
}

async fn policies(client: &aws_sdk_applicationautoscaling::Client) -> Vec<ScalingPolicy> {
    let out = client
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await
        .expect("describe scaling policies");
    let mut found = out.scaling_policies().to_vec();
    found.sort_by(|a, b| a.policy_name().cmp(b.policy_name()));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scalable_targets_and_policies_follow_the_stack() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let client = aws_sdk_applicationautoscaling::Client::new(&sdk);
    let mut stack = example_stack();
    stack.services[0].autoscaling = scaling(2, 4, ScalingTarget::CpuPercent(70.0));
    stack.services[1].autoscaling = scaling(2, 6, ScalingTarget::RequestsPerTarget(500));
    let engine = engine(&stack, &sdk).await;

    // The repositories first (the services wait for an image), then everything.
    up(&engine, &stack, fast()).await.expect("first up");
    push_image(&sdk, "frontend-repo", "abc1234").await;
    push_image(&sdk, "backend-repo", "abc1234").await;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    let planned: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let at = |id: &str| planned.iter().position(|p| *p == id).expect(id);
    assert!(at("autoscaling/backend") > at("service/backend"), "{plan}");
    assert!(
        at("autoscaling/frontend") > at("service/frontend"),
        "{plan}"
    );
    up(&engine, &stack, fast()).await.expect("second up");

    assert_eq!(
        targets(&client).await,
        [
            (
                "service/ecs-production-cluster/backend-service".to_owned(),
                2,
                6
            ),
            (
                "service/ecs-production-cluster/frontend-service".to_owned(),
                2,
                4
            ),
        ]
    );
    let found = policies(&client).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let backend = found[0]
        .target_tracking_scaling_policy_configuration()
        .expect("target tracking");
    assert_eq!(found[0].policy_name(), "backend-service-target-tracking");
    assert_eq!(backend.target_value(), 500.0);
    assert_eq!(backend.scale_in_cooldown(), Some(120));
    assert_eq!(backend.scale_out_cooldown(), Some(30));
    let metric = backend
        .predefined_metric_specification()
        .expect("predefined metric");
    assert_eq!(
        metric.predefined_metric_type(),
        &MetricType::AlbRequestCountPerTarget
    );
    // The label names the ALB and the backend's target group, as CloudWatch wants them.
    let label = metric.resource_label().expect("resource label");
    assert!(
        label.starts_with("app/ecs-alb/") && label.contains("/targetgroup/backend-tg/"),
        "{label}"
    );
    let frontend = found[1]
        .target_tracking_scaling_policy_configuration()
        .and_then(|c| c.predefined_metric_specification())
        .expect("predefined metric");
    assert_eq!(
        frontend.predefined_metric_type(),
        &MetricType::EcsServiceAverageCpuUtilization
    );

    // Nothing changed: no mutating call. A desired count under autoscaling is AWS's to move,
    // so changing it in the stack is no difference either.
    stack.services[1].desired_count = 5;
    engine.recorder().clear();
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");
    up(&engine, &stack, fast()).await.expect("idle up");
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());

    // A new maximum and another metric: exactly those, applied with upserts.
    stack.services[1].autoscaling = scaling(2, 8, ScalingTarget::RequestsPerTarget(500));
    stack.services[0].autoscaling = scaling(2, 4, ScalingTarget::MemoryPercent(60.0));
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(
        plan_lines(&plan),
        [
            r#"autoscaling/frontend metric: "cpu" -> "memory""#,
            r#"autoscaling/frontend target: "70" -> "60""#,
            r#"autoscaling/backend max: "6" -> "8""#,
        ]
    );
    engine.recorder().clear();
    up(&engine, &stack, fast()).await.expect("up with changes");
    let mut mutating = engine.recorder().mutating();
    mutating.sort();
    assert_eq!(
        mutating,
        [
            "Application Auto Scaling.PutScalingPolicy",
            "Application Auto Scaling.PutScalingPolicy",
            "Application Auto Scaling.RegisterScalableTarget",
            "Application Auto Scaling.RegisterScalableTarget",
        ]
    );
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // A service whose table is removed loses its target and policy, and nothing else.
    stack.services[0].autoscaling = None;
    stack.services[0].desired_count = 2;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(plan_lines(&plan), ["autoscaling/frontend Delete"]);
    up(&engine, &stack, fast())
        .await
        .expect("up without frontend scaling");
    assert_eq!(
        targets(&client).await,
        [(
            "service/ecs-production-cluster/backend-service".to_owned(),
            2,
            8
        )]
    );
    assert_eq!(policies(&client).await.len(), 1);

    let mut options = fast();
    options.skip_final_snapshot = true;
    down(&engine, &stack, options).await;
    assert_eq!(targets(&client).await, []);
    assert_eq!(policies(&client).await.len(), 0);
    let snapshot = engine.discover(&stack).await.expect("discover");
    assert_eq!(snapshot.actual, Vec::new());
}
