//! Shared by the tests: the example stack, fixed account facts, moto clients.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_config::BehaviorVersion;
use berth_aws::{Action, Actual, Clients, Desired, Engine, Known, Plan, Value};
use berth_spec::Stack;
use berth_testkit::Moto;

pub const REGION: &str = "us-east-1";
/// The account moto answers GetCallerIdentity with.
pub const MOTO_ACCOUNT: &str = "123456789012";

pub fn example_stack() -> Stack {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml");
    berth_spec::load(&path).expect("the example stack is valid")
}

/// What discovery would report for an account where nothing exists yet but the images.
pub fn known(images: bool) -> Known {
    let mut images_by_service = BTreeMap::new();
    if images {
        for service in ["frontend", "backend"] {
            images_by_service.insert(
                service.to_owned(),
                format!("{MOTO_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{service}-repo:abc1234"),
            );
        }
    }
    Known {
        region: REGION.into(),
        account_id: MOTO_ACCOUNT.into(),
        azs: vec!["us-east-1a".into(), "us-east-1b".into()],
        images: images_by_service,
        outputs: Default::default(),
        ..Default::default()
    }
}

/// The account as it would be once `desired` is applied (the planner's fixed point).
pub fn as_actual(desired: &Desired) -> Vec<Actual> {
    desired
        .resources
        .iter()
        .map(|r| Actual {
            id: r.id.clone(),
            kind: r.kind,
            name: r.name.clone(),
            physical: format!("physical-{}", r.id),
            attrs: r
                .attrs
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Pending(t) => Value::Text(format!("rendered {t}")),
                        v => v.clone(),
                    };
                    (*k, v)
                })
                .collect(),
        })
        .collect()
}

pub async fn sdk_config(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "berth-tests",
        ))
        .load()
        .await
}

pub async fn engine(stack: &Stack, sdk: &aws_config::SdkConfig) -> Engine {
    let env = stack
        .environment("production")
        .expect("production environment");
    let aws = env.as_aws().expect("production runs on AWS");
    Engine::with_clients("production", aws, Clients::from_sdk(sdk))
        .await
        .expect("moto answers GetCallerIdentity")
}

/// A plan's steps as lines: `id attr: old -> new` per change, `id Create` / `id Delete`.
pub fn plan_lines(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .flat_map(|s| match &s.action {
            Action::Update(changes) => changes
                .iter()
                .map(|c| format!("{} {}: {} -> {}", s.id, c.attr, c.old, c.new))
                .collect(),
            other => vec![format!("{} {other:?}", s.id)],
        })
        .collect()
}
