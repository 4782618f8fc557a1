//! plan → up → describe → up again → change → down, against moto on 127.0.0.1.
//!
//! Where moto is not faithful (reference/moto.md): `describe_services` omits the deployment
//! configuration and the grace period, so the planner does not compare attributes AWS does
//! not report; those are tested against a fake of the service calls (`service_fake.rs`);
//! moto reports a fixed number of running tasks (`MOTO_RUNNING_TASKS`), so the step that
//! scales a service to another count does not wait for it to be stable.

use std::time::Duration;

use berth_aws::{Action, Engine, Options, Waits, silent};
use berth_spec::Stack;
use berth_testkit::Moto;

use crate::support::{MOTO_ACCOUNT, REGION, engine, example_stack, plan_lines, sdk_config};

/// Polls fast: moto makes every resource available at once.
pub fn fast() -> Options {
    Options {
        waits: Waits {
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(60),
            services: true,
        },
        ..Options::default()
    }
}

pub async fn up(
    engine: &Engine,
    stack: &Stack,
    options: Options,
) -> berth_aws::Result<berth_aws::Outcome> {
    let (snapshot, desired, plan) = engine.plan_up(stack).await?;
    engine
        .apply(stack, (&snapshot, &desired, &plan), options, &silent())
        .await
}

pub async fn down(engine: &Engine, stack: &Stack, options: Options) -> berth_aws::Outcome {
    let (snapshot, desired, plan) = engine.plan_down(stack).await.expect("plan down");
    engine
        .destroy(stack, (&snapshot, &desired, &plan), options, &silent())
        .await
        .expect("down")
}

/// Pushes a (tiny, valid) image manifest as `<repo>:<tag>`, as `docker push` would.
pub async fn push_image(sdk: &aws_config::SdkConfig, repo: &str, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
        "layers": []
    });
    aws_sdk_ecr::Client::new(sdk)
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .expect("put image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_lifecycle_against_moto() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let mut stack = example_stack();
    let engine = engine(&stack, &sdk).await;

    // An empty account: everything to create; the services wait for their images.
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(
        plan.steps.iter().all(|s| s.action == Action::Create),
        "{plan}"
    );
    assert_eq!(plan.waiting_for_image.len(), 2);
    let outcome = up(&engine, &stack, fast()).await.expect("first up");
    assert_eq!(outcome.waiting_for_image.len(), 2);
    let url = outcome.url.expect("the ALB's URL");
    assert!(url.starts_with("http://ecs-alb-"), "{url}");

    // Once the images exist, the next up creates exactly the task definitions and services.
    push_image(&sdk, "frontend-repo", "abc1234").await;
    push_image(&sdk, "backend-repo", "abc1234").await;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    let mut ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "service/backend",
            "service/frontend",
            "taskdef/backend",
            "taskdef/frontend"
        ],
        "{plan}"
    );
    up(&engine, &stack, fast()).await.expect("second up");

    crate::lifecycle_checks::every_resource_as_the_seed_says(&sdk, &url).await;

    // Nothing changed: an empty plan and not one mutating call.
    engine.recorder().clear();
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");
    up(&engine, &stack, fast()).await.expect("idle up");
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());
    assert!(
        !engine.recorder().calls().is_empty(),
        "discovery made calls"
    );

    // A changed desired count and health-check path: exactly those, then applied.
    stack.services[1].desired_count = 3;
    stack.services[0].health_check.path = "/healthz".into();
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(
        plan_lines(&plan),
        [
            r#"tg/frontend health_check_path: "/" -> "/healthz""#,
            r#"service/backend desired_count: "2" -> "3""#,
        ]
    );
    // moto runs a fixed number of tasks: a service scaled to 3 never looks stable there.
    let mut no_service_wait = fast();
    no_service_wait.waits.services = false;
    engine.recorder().clear();
    up(&engine, &stack, no_service_wait)
        .await
        .expect("up with changes");
    let mut mutating = engine.recorder().mutating();
    mutating.sort();
    assert_eq!(
        mutating,
        [
            "ECS.UpdateService",
            "Elastic Load Balancing v2.ModifyTargetGroup",
            "Elastic Load Balancing v2.ModifyTargetGroupAttributes",
        ]
    );
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    // Down: nothing of the stack is left but the final snapshot it reports keeping.
    let outcome = down(&engine, &stack, fast()).await;
    assert_eq!(outcome.kept.len(), 1, "{:?}", outcome.kept);
    assert!(outcome.kept[0].contains("ecs-postgres-db-final-"));
    let snapshot = engine.discover(&stack).await.expect("discover");
    assert_eq!(snapshot.actual, Vec::new());
    crate::lifecycle_checks::nothing_left(&sdk).await;
    let _ = (MOTO_ACCOUNT, REGION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_for_another_account_refuses_to_act() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let aws = berth_spec::AwsEnvironment {
        region: REGION.into(),
        profile: None,
        account_id: Some("999999999999".into()),
    };
    let clients = berth_aws::Clients::from_sdk(&sdk);
    let refused = Engine::with_clients("production", &aws, clients.clone()).await;
    match refused {
        Err(berth_aws::Error::WrongAccount { actual, .. }) => assert_eq!(actual, MOTO_ACCOUNT),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("acted on another account"),
    }
    assert!(clients.recorder.mutating().is_empty());
}
