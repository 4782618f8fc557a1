//! `berth deployments` and `berth rollback -e production` against the fake of the service
//! calls (moto emulates neither ListServiceDeployments nor StopServiceDeployment nor any
//! rollout); the network, the task definitions and the discovery still go to moto.

use aws_sdk_ecs::types::ServiceDeploymentStatus as S;
use berth_aws::{DeploymentRecord, Error, RolledBack, silent};
use berth_testkit::Moto;

use crate::deploy::{ready, watching};
use crate::service_fake::{RolloutStep, engine_with_fake};
use crate::support::{REGION, example_stack, sdk_config};

fn record(n: u32, status: S, revision: u32) -> DeploymentRecord {
    DeploymentRecord {
        arn: format!(
            "arn:aws:ecs:{REGION}:123456789012:service-deployment/ecs-cluster/backend-service/d{n}"
        ),
        status,
        task_definition: format!(
            "arn:aws:ecs:{REGION}:123456789012:task-definition/backend-task:{revision}"
        ),
        created_at: None,
        finished_at: None,
        reason: String::new(),
        lifecycle_stage: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stops_a_deployment_or_returns_to_the_previous_revision() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let (fake, engine) = engine_with_fake(&sdk, &stack).await;
    ready(&sdk, &engine, &stack).await;

    // The history as ECS lists it.
    let history = vec![
        record(3, S::InProgress, 3),
        record(2, S::Successful, 2),
        record(1, S::Successful, 1),
    ];
    fake.set_history(history.clone());
    assert_eq!(
        engine
            .deployments(&stack, "backend")
            .await
            .expect("history"),
        history
    );

    // A manual rollback mid-deployment: StopServiceDeployment(ROLLBACK) on it, watched
    // until ECS says ROLLBACK_SUCCESSFUL.
    let started = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect("rollback");
    assert_eq!(
        started,
        RolledBack::Stopped {
            deployment: history[0].arn.clone()
        }
    );
    assert_eq!(fake.stops(), [history[0].arn.clone()]);
    fake.script_stop([S::RollbackInProgress, S::RollbackSuccessful]);
    engine
        .watch_rollback(&stack, "backend", &started, watching(), &silent())
        .await
        .expect("rolled back");

    // ECS could not roll it back: exit 1 with its reason.
    let mut failing = history.clone();
    failing[0].status = S::InProgress;
    failing[0].reason = "tasks of the previous revision failed to start".into();
    fake.set_history(failing);
    let started = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect("rollback");
    fake.script_stop([S::RollbackInProgress, S::RollbackFailed]);
    match engine
        .watch_rollback(&stack, "backend", &started, watching(), &silent())
        .await
    {
        Err(Error::Rollout {
            reason, revision, ..
        }) => {
            assert_eq!(revision, 3);
            assert!(reason.contains("failed to start"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // Stuck rolling back: the timeout says what it waited for.
    fake.set_history(history.clone());
    let started = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect("rollback");
    fake.script_stop(std::iter::repeat_n(S::RollbackInProgress, 10_000));
    match engine
        .watch_rollback(&stack, "backend", &started, watching(), &silent())
        .await
    {
        Err(Error::Timeout { what, .. }) => {
            assert_eq!(what, "service/backend to be rolled back")
        }
        other => panic!("{other:?}"),
    }

    // Settled on revision 3: the service is updated to revision 2 and watched to
    // COMPLETED.
    let settled = vec![
        record(3, S::Successful, 3),
        record(2, S::Successful, 2),
        record(1, S::Successful, 1),
    ];
    fake.script_stop([]);
    fake.set_history(settled.clone());
    let updates_before = fake.calls().len();
    let started = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect("rollback");
    let RolledBack::Redeployed(deployed) = &started else {
        panic!("{started:?}")
    };
    assert_eq!(deployed.revision, 2);
    assert_eq!(deployed.task_definition, settled[1].task_definition);
    let calls = fake.calls();
    assert_eq!(calls.len(), updates_before + 1, "{calls:?}");
    let (call, Some(request)) = &calls[updates_before] else {
        panic!("{calls:?}")
    };
    assert_eq!(*call, "update");
    assert_eq!(request.task_definition, settled[1].task_definition);
    fake.script([RolloutStep::InProgress, RolloutStep::Completed]);
    engine
        .watch_rollback(&stack, "backend", &started, watching(), &silent())
        .await
        .expect("completed");

    // One release only: nothing to roll back to, and nothing called.
    fake.set_history(vec![record(1, S::Successful, 1)]);
    let before = fake.calls().len();
    let nothing = engine
        .rollback(&stack, "backend", &silent())
        .await
        .expect_err("nothing to roll back to");
    assert!(
        matches!(nothing, Error::NothingToRollBack { .. }),
        "{nothing:?}"
    );
    assert_eq!(fake.calls().len(), before);
}
