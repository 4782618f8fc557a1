//! `berth deploy -e production`: against moto, a new revision with the image and the
//! service updated to it; the rollout (COMPLETED, the circuit breaker's FAILED, a stuck
//! deployment) against the fake of the service calls, because moto runs no rollout: its
//! deployment keeps the task definition the service was created with and is COMPLETED
//! from the start (reference/moto.md).

use std::time::Duration;

use berth_aws::{Engine, Error, Options, Waits, silent};
use berth_spec::Stack;
use berth_testkit::Moto;

use crate::lifecycle::{fast, push_image, up};
use crate::service_fake::{RolloutStep, engine_with_fake};
use crate::support::{REGION, engine, example_stack, sdk_config};

pub async fn ready(sdk: &aws_config::SdkConfig, engine: &Engine, stack: &Stack) {
    up(engine, stack, fast()).await.expect("first up");
    push_image(sdk, "frontend-repo", "abc1234").await;
    push_image(sdk, "backend-repo", "abc1234").await;
    up(engine, stack, fast()).await.expect("second up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_registers_the_next_revision_and_updates_the_service() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;
    ready(&sdk, &engine, &stack).await;
    push_image(&sdk, "backend-repo", "def5678").await;

    // A tag the repository does not have: said, and nothing changed.
    engine.recorder().clear();
    let refused = engine
        .deploy(&stack, "backend", Some("nope"), None, &silent())
        .await
        .expect_err("an unknown tag");
    assert!(
        refused
            .to_string()
            .contains("repository backend-repo has no image tagged nope"),
        "{refused}"
    );
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());
    let unknown = engine
        .deploy(&stack, "nosuch", None, None, &silent())
        .await
        .expect_err("an unknown service");
    assert!(
        unknown.to_string().contains("no service `nosuch`"),
        "{unknown}"
    );

    let deployed = engine
        .deploy(&stack, "backend", Some("def5678"), None, &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.revision, 2);
    let image = format!("123456789012.dkr.ecr.{REGION}.amazonaws.com/backend-repo:def5678");
    assert_eq!(deployed.image, image);
    let mutating = engine.recorder().mutating();
    assert_eq!(
        mutating,
        ["ECS.RegisterTaskDefinition", "ECS.UpdateService"],
        "{mutating:?}"
    );

    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let td = ecs
        .describe_task_definition()
        .task_definition("backend-task")
        .send()
        .await
        .expect("task definition");
    let td = td.task_definition().expect("task definition");
    assert_eq!(td.revision(), 2);
    assert_eq!(td.container_definitions()[0].image(), Some(image.as_str()));
    // The stack's settings came along: the revision differs from 1 only by its image.
    assert_eq!((td.cpu(), td.memory()), (Some("1024"), Some("2048")));
    let services = ecs
        .describe_services()
        .cluster(&stack.cluster)
        .services("backend-service")
        .send()
        .await
        .expect("service");
    assert_eq!(
        services.services()[0].task_definition(),
        Some(deployed.task_definition.as_str())
    );
    // The next up sees the service's image as the stack's: nothing to do.
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");
}

pub fn watching() -> Options {
    Options {
        waits: Waits {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
            services: true,
        },
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_complete_fail_or_time_out() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let (fake, engine) = engine_with_fake(&sdk, &stack).await;
    ready(&sdk, &engine, &stack).await;

    // COMPLETED after two polls in progress.
    let deployed = engine
        .deploy(&stack, "backend", None, None, &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.revision, 2);
    let updated = fake.service("backend-service");
    assert_eq!(
        updated.deployments()[0].task_definition(),
        Some(deployed.task_definition.as_str())
    );
    fake.script([
        RolloutStep::InProgress,
        RolloutStep::InProgress,
        RolloutStep::Completed,
    ]);
    engine
        .watch_rollout(&stack, "backend", &deployed, watching(), &silent())
        .await
        .expect("completed");

    // The circuit breaker fails it: the reason and ECS's event are in the error.
    let deployed = engine
        .deploy(&stack, "backend", None, None, &silent())
        .await
        .expect("deploy");
    assert_eq!(deployed.revision, 3);
    fake.script([
        RolloutStep::InProgress,
        RolloutStep::Failed(
            "ECS deployment circuit breaker: tasks failed to start.",
            "(service backend-service) deployment failed: tasks failed to start.",
        ),
    ]);
    match engine
        .watch_rollout(&stack, "backend", &deployed, watching(), &silent())
        .await
    {
        Err(Error::Rollout {
            revision,
            reason,
            events,
            ..
        }) => {
            assert_eq!(revision, 3);
            assert!(reason.contains("circuit breaker"), "{reason}");
            assert!(events[0].contains("tasks failed to start"), "{events:?}");
        }
        other => panic!("{other:?}"),
    }

    // Stuck in progress: the timeout, which says what it waited for.
    let deployed = engine
        .deploy(&stack, "backend", None, None, &silent())
        .await
        .expect("deploy");
    fake.script(std::iter::repeat_n(RolloutStep::InProgress, 10_000));
    match engine
        .watch_rollout(&stack, "backend", &deployed, watching(), &silent())
        .await
    {
        Err(Error::Timeout { what, .. }) => {
            assert_eq!(what, "service/backend to be rolled out")
        }
        other => panic!("{other:?}"),
    }
}
