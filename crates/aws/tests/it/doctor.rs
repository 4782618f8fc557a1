//! `berth doctor`: the example stack made healthy against moto, then one thing broken at a
//! time with a direct SDK call (as a person at the console would); exactly that check fails
//! with its advice, and `up` (what the advice says) makes every check pass again. The stuck
//! deployment, which moto does not emulate, through the `ServiceApi` fake; what its stopped
//! tasks died of in `doctor::diagnose`'s unit tests (moto's DescribeTasks does not parse).

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_ecs::types as ecs;
use berth_aws::doctor::{Finding, Options, Status};
use berth_aws::{Engine, desired::EXECUTION_POLICY_ARN};
use berth_spec::Stack;
use berth_testkit::Moto;
use chrono::Utc;

use crate::deploy::ready;
use crate::lifecycle::{fast, push_image, up};
use crate::service_fake::engine_with_fake;
use crate::support::{engine, example_stack, sdk_config};

async fn doctor(engine: &Engine, stack: &Stack) -> Vec<Finding> {
    engine.recorder().clear();
    let findings = engine
        .doctor(stack, &Options::default())
        .await
        .expect("doctor");
    // The doctor only reads.
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());
    findings
}

/// The checks that did not pass, with their status.
fn not_ok(findings: &[Finding]) -> BTreeSet<(String, Status)> {
    findings
        .iter()
        .filter(|f| f.status != Status::Ok)
        .map(|f| (f.check.clone(), f.status))
        .collect()
}

fn failing(checks: &[&str]) -> BTreeSet<(String, Status)> {
    checks
        .iter()
        .map(|c| ((*c).to_owned(), Status::Fail))
        .collect()
}

fn finding<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no check {check:?} in {findings:#?}"))
}

/// Runs `up` (what most advice says) and asserts that every check passes again.
async fn restored(engine: &Engine, stack: &Stack) {
    up(engine, stack, fast()).await.expect("up restores");
    let findings = doctor(engine, stack).await;
    assert_eq!(not_ok(&findings), BTreeSet::new(), "{findings:#?}");
}

async fn physical(engine: &Engine, stack: &Stack, id: &str) -> String {
    engine
        .discover(stack)
        .await
        .expect("discover")
        .get(id)
        .unwrap_or_else(|| panic!("{id} exists"))
        .physical
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_thing_fails_its_own_check_with_its_advice() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;

    // Before the images: the services wait (warnings), nothing fails.
    up(&engine, &stack, fast()).await.expect("first up");
    let findings = doctor(&engine, &stack).await;
    assert!(
        findings.iter().all(|f| f.status != Status::Fail),
        "{findings:#?}"
    );
    let waiting = finding(&findings, "pull: image of backend");
    assert_eq!(waiting.status, Status::Warn);
    assert!(
        waiting
            .fix
            .contains("berth build backend --push -e production"),
        "{waiting:?}"
    );

    // Healthy: every check passes.
    ready(&sdk, &engine, &stack).await;
    let findings = doctor(&engine, &stack).await;
    assert_eq!(not_ok(&findings), BTreeSet::new(), "{findings:#?}");
    let checks: Vec<&str> = findings.iter().map(|f| f.check.as_str()).collect();
    for expected in [
        "pull: route of private subnet 1",
        "pull: route of private subnet 2",
        "pull: execution role may pull images",
        "pull: image of frontend",
        "logs: backend writes to /ecs/backend",
        "secrets: /ecs/backend/DB_PASSWORD",
        "secrets: /ecs/frontend/API_URL",
        "targets: ECS-SG allows 3001 from ALB-SG",
        "targets: ECS-SG allows 80 from ALB-SG",
        "targets: RDS-SG allows 5432 from ECS-SG",
        "targets: security groups attached",
        "targets: health check of backend-tg",
        "deploy: backend-service",
    ] {
        assert!(checks.contains(&expected), "no {expected:?} in {checks:#?}");
    }

    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let iam = aws_sdk_iam::Client::new(&sdk);
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);

    // ECS-SG → RDS-SG on 5432 revoked.
    let rds_sg = physical(&engine, &stack, "sg/rds").await;
    let ecs_sg = physical(&engine, &stack, "sg/ecs").await;
    ec2.revoke_security_group_ingress()
        .group_id(&rds_sg)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(&ecs_sg)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("revoke");
    let findings = doctor(&engine, &stack).await;
    let check = "targets: RDS-SG allows 5432 from ECS-SG";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem.contains("cannot reach PostgreSQL on port 5432"),
        "{f:?}"
    );
    assert!(
        f.fix
            .contains(&format!("allow TCP 5432 from ECS-SG ({ecs_sg}) in RDS-SG")),
        "{f:?}"
    );
    restored(&engine, &stack).await;

    // The execution role's managed policy detached: no pulls, no logs.
    iam.detach_role_policy()
        .role_name(&stack.iam.execution_role.name)
        .policy_arn(EXECUTION_POLICY_ARN)
        .send()
        .await
        .expect("detach");
    let findings = doctor(&engine, &stack).await;
    let check = "pull: execution role may pull images";
    assert_eq!(
        not_ok(&findings),
        failing(&[
            check,
            "logs: backend writes to /ecs/backend",
            "logs: frontend writes to /ecs/frontend",
        ]),
        "{findings:#?}"
    );
    let f = finding(&findings, check);
    assert!(
        f.problem.contains("may not ecr:GetAuthorizationToken on *"),
        "{f:?}"
    );
    assert!(f.problem.contains("CannotPullContainerError"), "{f:?}");
    assert!(
        f.fix
            .contains("attach AmazonECSTaskExecutionRolePolicy (arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy) to ecsTaskExecutionRole"),
        "{f:?}"
    );
    restored(&engine, &stack).await;

    // The NAT route of the first private subnet deleted.
    let table = physical(&engine, &stack, "rtb/private-1").await;
    ec2.delete_route()
        .route_table_id(&table)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .expect("delete route");
    let findings = doctor(&engine, &stack).await;
    let check = "pull: route of private subnet 1";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem.contains("has no default route (0.0.0.0/0)"),
        "{f:?}"
    );
    assert!(
        f.fix.contains(&format!(
            "route 0.0.0.0/0 of ecs-production-private-us-east-1a ({table}) to a NAT gateway"
        )),
        "{f:?}"
    );
    restored(&engine, &stack).await;

    // The backend's health check path changed.
    let tg = physical(&engine, &stack, "tg/backend").await;
    elb.modify_target_group()
        .target_group_arn(&tg)
        .health_check_path("/health")
        .send()
        .await
        .expect("modify target group");
    let findings = doctor(&engine, &stack).await;
    let check = "targets: health check of backend-tg";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem.contains(
            "backend-tg checks \"/health\", the stack's health check path is \"/api/health\""
        ),
        "{f:?}"
    );
    restored(&engine, &stack).await;

    // A secret's parameter deleted.
    ssm.delete_parameter()
        .name("/ecs/backend/DB_HOST")
        .send()
        .await
        .expect("delete parameter");
    let findings = doctor(&engine, &stack).await;
    let check = "secrets: /ecs/backend/DB_HOST";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem
            .contains("parameter /ecs/backend/DB_HOST (read by backend DB_HOST) does not exist"),
        "{f:?}"
    );
    assert_eq!(f.fix, "`berth up -e production` creates it");
    restored(&engine, &stack).await;

    // The execution role's inline policy narrowed to the frontend's parameter.
    let frontend_only = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ssm:GetParameters",
        "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/ecs/frontend/*"
    }]});
    iam.put_role_policy()
        .role_name(&stack.iam.execution_role.name)
        .policy_name("berth")
        .policy_document(frontend_only.to_string())
        .send()
        .await
        .expect("put role policy");
    let findings = doctor(&engine, &stack).await;
    assert_eq!(
        not_ok(&findings),
        failing(&[
            "secrets: /ecs/backend/DB_HOST",
            "secrets: /ecs/backend/DB_NAME",
            "secrets: /ecs/backend/DB_PASSWORD",
            "secrets: /ecs/backend/DB_PORT",
            "secrets: /ecs/backend/DB_USER",
            "secrets: /ecs/backend/FRONTEND_URL",
        ]),
        "{findings:#?}"
    );
    let f = finding(&findings, "secrets: /ecs/backend/DB_PASSWORD");
    assert!(
        f.problem.contains("ecsTaskExecutionRole may not ssm:GetParameters on arn:aws:ssm:us-east-1:123456789012:parameter/ecs/backend/DB_PASSWORD"),
        "{f:?}"
    );
    restored(&engine, &stack).await;

    // The image the backend's task definition runs deleted from its repository.
    aws_sdk_ecr::Client::new(&sdk)
        .batch_delete_image()
        .repository_name("backend-repo")
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("abc1234")
                .build(),
        )
        .send()
        .await
        .expect("delete image");
    let findings = doctor(&engine, &stack).await;
    let check = "pull: image of backend";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem
            .contains("/backend-repo:abc1234, which repository backend-repo does not hold"),
        "{f:?}"
    );
    assert!(
        f.fix.contains("berth build backend --push -e production"),
        "{f:?}"
    );
    push_image(&sdk, "backend-repo", "abc1234").await;
    restored(&engine, &stack).await;

    // A SecureString put again under a customer managed key the role may not use (last:
    // `up` keeps an existing password, and so its key).
    ssm.put_parameter()
        .name("/ecs/backend/DB_PASSWORD")
        .value("another")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .key_id("alias/team-key")
        .overwrite(true)
        .send()
        .await
        .expect("put under another key");
    let findings = doctor(&engine, &stack).await;
    let check = "secrets: /ecs/backend/DB_PASSWORD";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem
            .contains("may not kms:Decrypt on arn:aws:kms:us-east-1:123456789012:alias/team-key"),
        "{f:?}"
    );
    assert!(f.fix.contains("default aws/ssm key"), "{f:?}");
}

fn deployment(
    id: &str,
    state: ecs::DeploymentRolloutState,
    age: Duration,
    failed: i32,
) -> ecs::Deployment {
    let created = Utc::now() - chrono::Duration::from_std(age).unwrap();
    ecs::Deployment::builder()
        .id(id)
        .status("PRIMARY")
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-task:2")
        .desired_count(2)
        .running_count(0)
        .failed_tasks(failed)
        .rollout_state(state)
        .created_at(aws_smithy_types::DateTime::from_secs(created.timestamp()))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_or_failed_deployment_fails_with_its_numbers() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let (fake, engine) = engine_with_fake(&sdk, &stack).await;
    ready(&sdk, &engine, &stack).await;
    let findings = doctor(&engine, &stack).await;
    assert_eq!(not_ok(&findings), BTreeSet::new(), "{findings:#?}");

    // In progress for 45 minutes with 3 failed tasks: stuck.
    fake.set_deployments(
        "backend-service",
        vec![deployment(
            "ecs-svc/stuck",
            ecs::DeploymentRolloutState::InProgress,
            Duration::from_secs(45 * 60),
            3,
        )],
    );
    let findings = doctor(&engine, &stack).await;
    let check = "deploy: backend-service";
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    let f = finding(&findings, check);
    assert!(
        f.problem.contains(
            "deployment ecs-svc/stuck (backend-task:2) has been in progress for 45m (more than 30m): 0 of 2 tasks running, 3 failed"
        ),
        "{f:?}"
    );
    // What its stopped tasks died of (DescribeTasks) is `diagnose`'s unit test: moto's
    // DescribeTasks answers numbers where the SDK reads strings (containers' cpu, memory).
    assert!(
        f.fix.contains("`berth rollback backend -e production`"),
        "{f:?}"
    );

    // The threshold is the caller's: with an hour, the same deployment only warns (it has
    // failed tasks).
    let patient = Options {
        stuck_after: Duration::from_secs(3600),
        ..Options::default()
    };
    let findings = engine.doctor(&stack, &patient).await.expect("doctor");
    assert_eq!(
        not_ok(&findings),
        [(check.to_owned(), Status::Warn)].into_iter().collect(),
        "{findings:#?}"
    );

    // A young deployment without failures is fine; a FAILED one fails with its reason.
    fake.set_deployments(
        "backend-service",
        vec![deployment(
            "ecs-svc/young",
            ecs::DeploymentRolloutState::InProgress,
            Duration::from_secs(120),
            0,
        )],
    );
    assert_eq!(not_ok(&doctor(&engine, &stack).await), BTreeSet::new());
    let failed = ecs::Deployment::builder()
        .id("ecs-svc/broken")
        .status("PRIMARY")
        .task_definition("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-task:2")
        .rollout_state(ecs::DeploymentRolloutState::Failed)
        .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
        .build();
    fake.set_deployments("backend-service", vec![failed]);
    let findings = doctor(&engine, &stack).await;
    assert_eq!(not_ok(&findings), failing(&[check]), "{findings:#?}");
    assert!(
        finding(&findings, check)
            .problem
            .contains("failed: ECS deployment circuit breaker: tasks failed to start."),
        "{findings:#?}"
    );
}
