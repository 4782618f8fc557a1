//! `[ci.github]` on AWS: `up` creates GitHub's OIDC provider and the deploy and plan roles,
//! trusted by one repository's pushes to its branch (or its pull requests), allowed only on
//! this stack's resources; a second `up` changes nothing; `down` removes them.
//!
//! moto does not evaluate policies (no `iam:SimulatePrincipalPolicy`): the test reads the
//! policy documents back from IAM, asserts their Resource lists, and asks a small evaluator
//! of Allow statements (IAM's `*` wildcards) whether an action on an ARN is allowed.

use std::path::Path;

use berth_spec::Stack;
use berth_testkit::Moto;
use serde_json::Value;

use crate::lifecycle::{down, fast, up};
use crate::support::{MOTO_ACCOUNT, REGION, engine, sdk_config};

const PROVIDER: &str =
    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

fn stack(name: &str, ci: &str) -> Stack {
    let text = format!(
        r#"
[stack]
name = "{name}"

[environments.production]
runtime = "aws"
region = "{REGION}"

[network]
nat = "none"

[services.api]
port = 3001
repository = "{name}-api"
service_name = "{name}-api-service"
task_family = "{name}-api-task"
logs = {{ group = "/ecs/{name}-api" }}
{ci}"#
    );
    berth_spec::parse(&text, "berth.toml", Path::new("/app")).expect("valid stack")
}

const CI: &str = r#"
[ci.github]
repository = "acme/shop"
install = "cargo install --locked berth-cli --features aws"
"#;

fn arn(service: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{REGION}:{MOTO_ACCOUNT}:{resource}")
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{MOTO_ACCOUNT}:role/{name}")
}

/// IAM's wildcard match (`*` any run, `?` one character).
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => {
            pattern.len() == value.len()
                && pattern
                    .chars()
                    .zip(value.chars())
                    .all(|(p, v)| p == '?' || p == v)
        }
        Some((head, tail)) => {
            value.len() >= head.len()
                && matches(head, &value[..head.len()])
                && (head.len()..=value.len()).any(|i| matches(tail, &value[i..]))
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether an Allow statement of `policy` grants `action` on `resource` (conditions aside:
/// they only narrow).
fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).iter().any(|a| matches(a, action))
            && strings(&s["Resource"]).iter().any(|r| matches(r, resource))
    })
}

fn statement<'p>(policy: &'p Value, sid: &str) -> &'p Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {policy:#}"))
}

fn decode(doc: &str) -> Value {
    let text = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&text).expect("a JSON policy")
}

async fn role(iam: &aws_sdk_iam::Client, name: &str) -> (Value, Value) {
    let role = iam.get_role().role_name(name).send().await.expect("role");
    let trust = decode(
        role.role()
            .and_then(|r| r.assume_role_policy_document())
            .expect("trust"),
    );
    let policy = iam
        .get_role_policy()
        .role_name(name)
        .policy_name("berth")
        .send()
        .await
        .expect("inline policy");
    (trust, decode(policy.policy_document()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_identity_is_created_least_privileged_idempotent_and_removed() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let shop = stack("shop", CI);
    let engine = engine(&shop, &sdk).await;
    let iam = aws_sdk_iam::Client::new(&sdk);

    let (_, _, plan) = engine.plan_up(&shop).await.expect("plan");
    let planned: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    for id in ["oidc/github", "role/ci/deploy", "role/ci/plan"] {
        assert!(planned.contains(&id), "{id} not planned:\n{plan}");
    }
    up(&engine, &shop, fast()).await.expect("up");

    // The provider: GitHub's issuer, for STS's audience, tagged as the stack's.
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(PROVIDER)
        .send()
        .await
        .expect("the provider exists");
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    let tags = iam
        .list_open_id_connect_provider_tags()
        .open_id_connect_provider_arn(PROVIDER)
        .send()
        .await
        .expect("tags");
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "berth:stack" && t.value() == "shop")
    );

    // Trust: GitHub's tokens for STS, from pushes to main of acme/shop only (deploy) and
    // from its pull requests only (plan).
    let (deploy_trust, deploy) = role(&iam, "shop-github-deploy").await;
    let (plan_trust, plan_policy) = role(&iam, "shop-github-plan").await;
    for (trust, subject) in [
        (&deploy_trust, "repo:acme/shop:ref:refs/heads/main"),
        (&plan_trust, "repo:acme/shop:pull_request"),
    ] {
        let s = &trust["Statement"][0];
        assert_eq!(s["Principal"]["Federated"], PROVIDER);
        assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity");
        let condition = &s["Condition"]["StringEquals"];
        assert_eq!(
            condition["token.actions.githubusercontent.com:sub"],
            subject
        );
        assert_eq!(
            condition["token.actions.githubusercontent.com:aud"],
            "sts.amazonaws.com"
        );
    }

    // The deploy role's statements name this stack's ARNs.
    let repo = arn("ecr", "repository/shop-api");
    let service = arn("ecs", "service/shop-cluster/shop-api-service");
    assert_eq!(
        strings(&statement(&deploy, "PushImages")["Resource"]),
        std::slice::from_ref(&repo)
    );
    assert_eq!(
        strings(&statement(&deploy, "DeployServices")["Resource"]),
        std::slice::from_ref(&service)
    );
    assert_eq!(
        strings(&statement(&deploy, "TagTaskDefinitions")["Resource"]),
        [arn("ecs", "task-definition/shop-api-task:*")]
    );
    let pass = statement(&deploy, "PassTaskRoles");
    let task_roles: Vec<String> = std::iter::once(&shop.iam.execution_role.name)
        .chain(shop.iam.task_roles.iter().map(|r| &r.name))
        .map(|name| role_arn(name))
        .collect();
    assert_eq!(strings(&pass["Resource"]), task_roles);
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    let group = arn(
        "logs",
        &format!("log-group:{}", shop.services[0].logs.group),
    );
    assert_eq!(
        strings(&statement(&deploy, "ReadLogs")["Resource"]),
        [group.clone(), format!("{group}:*")]
    );
    // `*` only where IAM cannot scope the action, and then nothing that writes but the
    // registry login and the registration of a revision (whose roles are scoped above).
    for s in deploy["Statement"].as_array().unwrap() {
        if strings(&s["Resource"]).iter().any(|r| r == "*") {
            for action in strings(&s["Action"]) {
                let op = action.split(':').nth(1).unwrap();
                assert!(
                    op.starts_with("Describe")
                        || action == "ecr:GetAuthorizationToken"
                        || action == "ecs:RegisterTaskDefinition",
                    "{action} on *"
                );
            }
        }
    }

    // What the workflow needs is allowed; the same on another stack's resources is not.
    let other = stack("billing", "");
    let other_repo = arn("ecr", "repository/billing-api");
    let other_service = arn("ecs", "service/billing-cluster/billing-api-service");
    for action in ["ecr:PutImage", "ecr:UploadLayerPart", "ecr:BatchGetImage"] {
        assert!(allows(&deploy, action, &repo), "{action} on {repo}");
        assert!(
            !allows(&deploy, action, &other_repo),
            "{action} on {other_repo}"
        );
    }
    assert!(allows(&deploy, "ecs:UpdateService", &service));
    assert!(!allows(&deploy, "ecs:UpdateService", &other_service));
    assert!(allows(
        &deploy,
        "iam:PassRole",
        &role_arn(&shop.iam.execution_role.name)
    ));
    assert!(!allows(
        &deploy,
        "iam:PassRole",
        &role_arn(&other.iam.execution_role.name)
    ));
    assert!(!allows(
        &deploy,
        "iam:PassRole",
        &role_arn("shop-github-deploy")
    ));
    let other_group = arn(
        "logs",
        &format!("log-group:{}", other.services[0].logs.group),
    );
    assert_ne!(other_group, group);
    assert!(!allows(
        &deploy,
        "logs:GetLogEvents",
        &format!("{other_group}:*")
    ));
    assert!(allows(&deploy, "ecr:GetAuthorizationToken", "*"));
    // The plan role reads and never writes.
    assert!(allows(&plan_policy, "ecs:DescribeServices", &service));
    assert!(allows(&plan_policy, "ecr:DescribeImages", &repo));
    for (action, resource) in [
        ("ecr:PutImage", &repo),
        ("ecs:UpdateService", &service),
        ("ecs:RegisterTaskDefinition", &"*".to_owned()),
        ("iam:PassRole", &role_arn(&shop.iam.execution_role.name)),
        ("ecr:GetAuthorizationToken", &"*".to_owned()),
    ] {
        assert!(
            !allows(&plan_policy, action, resource),
            "plan role: {action}"
        );
    }

    // A second up finds everything as it should be: no mutating call.
    engine.recorder().clear();
    let (_, _, plan) = engine.plan_up(&shop).await.expect("plan again");
    assert!(plan.is_empty(), "{plan}");
    up(&engine, &shop, fast()).await.expect("idle up");
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());

    // A change of branch updates the deploy role's trust in place.
    let moved = stack(
        "shop",
        &CI.replace("[ci.github]", "[ci.github]\nbranch = \"release\""),
    );
    let (_, _, plan) = engine.plan_up(&moved).await.expect("plan the branch");
    assert_eq!(
        plan.steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["role/ci/deploy"],
        "{plan}"
    );
    up(&engine, &moved, fast()).await.expect("up the branch");
    let (trust, _) = role(&iam, "shop-github-deploy").await;
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        "repo:acme/shop:ref:refs/heads/release"
    );

    down(&engine, &moved, fast()).await;
    for name in ["shop-github-deploy", "shop-github-plan"] {
        let gone = iam.get_role().role_name(name).send().await;
        assert!(gone.is_err(), "{name} still exists");
    }
    let providers = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("list providers");
    assert!(
        providers.open_id_connect_provider_list().is_empty(),
        "the provider was not deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_someone_else_made_is_used_and_kept() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .send()
        .await
        .expect("a provider made by hand");
    let shop = stack("shop", CI);
    let engine = engine(&shop, &sdk).await;
    let (_, _, plan) = engine.plan_up(&shop).await.expect("plan");
    assert!(plan.steps.iter().all(|s| s.id != "oidc/github"), "{plan}");
    up(&engine, &shop, fast()).await.expect("up");
    let (trust, _) = role(&iam, "shop-github-deploy").await;
    assert_eq!(trust["Statement"][0]["Principal"]["Federated"], PROVIDER);
    down(&engine, &shop, fast()).await;
    assert!(
        iam.get_role()
            .role_name("shop-github-deploy")
            .send()
            .await
            .is_err()
    );
    iam.get_open_id_connect_provider()
        .open_id_connect_provider_arn(PROVIDER)
        .send()
        .await
        .expect("the provider made by hand is still there");
}

#[test]
fn ci_roles_may_deploy_and_watch_a_blue_green_service() {
    let shop = stack(
        "shop",
        &format!(
            "routes = [{{ path = \"/*\", priority = 10 }}]\ndeployment = {{ strategy = \"blue_green\" }}\n{CI}"
        ),
    );
    let known = crate::support::known(false);
    let ci = shop.ci.as_ref().expect("ci");
    let deploy: Value =
        serde_json::from_str(&berth_aws::ci::deploy_policy(&shop, &known, ci)).unwrap();
    let plan: Value = serde_json::from_str(&berth_aws::ci::plan_policy(&shop, &known, ci)).unwrap();
    let infra = role_arn("shop-ecs-infrastructure");
    // Both read the infrastructure role (discovery looks for it).
    for policy in [&deploy, &plan] {
        assert!(allows(policy, "iam:GetRole", &infra), "{policy:#}");
    }
    // Only the deploy role passes it, to ECS alone, and watches the deployments.
    let pass = statement(&deploy, "PassInfrastructureRole");
    assert_eq!(strings(&pass["Resource"]), std::slice::from_ref(&infra));
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs.amazonaws.com"
    );
    assert!(!allows(&plan, "iam:PassRole", &infra));
    let service = arn("ecs", "service/shop-cluster/shop-api-service");
    let cluster = shop.cluster.clone();
    assert!(allows(&deploy, "ecs:ListServiceDeployments", &service));
    for (action, resource) in [
        (
            "ecs:DescribeServiceDeployments",
            format!("service-deployment/{cluster}/shop-api-service/abc"),
        ),
        (
            "ecs:DescribeServiceRevisions",
            format!("service-revision/{cluster}/shop-api-service/123"),
        ),
    ] {
        assert!(allows(&deploy, action, &arn("ecs", &resource)), "{action}");
        assert!(!allows(&plan, action, &arn("ecs", &resource)), "{action}");
    }
}
