//! An `up` or `down` that fails at any mutating call, run again, converges: the plan is
//! empty afterwards and nothing was made twice. The failure is injected by the clients'
//! recorder before the call is sent, as a refused permission or a lost connection would.
//!
//! A clean `up` of the example makes about 70 mutating calls and each round here is two
//! `up`s, so the infrastructure's calls are sampled at an even stride (first and last
//! included) to keep CI in minutes; the services' calls (with autoscaling) are all tried.

use std::time::Duration;

use berth_aws::{Engine, Options, Recorder, silent};
use berth_spec::{Autoscaling, ScalingTarget, Stack};
use berth_testkit::Moto;

use crate::lifecycle::{fast, push_image, up};
use crate::support::{engine, example_stack, sdk_config};

/// Fails the `k`-th mutating call of an `up`, then checks that a re-run converges.
async fn fail_then_converge(engine: &Engine, stack: &Stack, k: usize) {
    let recorder: &Recorder = engine.recorder();
    recorder.fail_mutating_call(Some(k));
    let error = up(engine, stack, fast())
        .await
        .expect_err("the injected failure stops up");
    let chain = format!("{error}: {:?}", error);
    assert!(chain.contains("injected failure"), "call {k}: {chain}");
    recorder.fail_mutating_call(None);
    up(engine, stack, fast())
        .await
        .unwrap_or_else(|e| panic!("re-run after a failure at mutating call {k}: {e:?}"));
    let (_, _, plan) = engine.plan_up(stack).await.expect("plan");
    assert!(
        plan.is_empty(),
        "after a failure at mutating call {k}:\n{plan}"
    );
}

/// About eight indices spread over `0..n`, the first and the last among them.
fn sample(n: usize) -> Vec<usize> {
    let mut picked: Vec<usize> = (0..n).step_by(n.div_ceil(8).max(1)).collect();
    if n > 0 && picked.last() != Some(&(n - 1)) {
        picked.push(n - 1);
    }
    picked
}

async fn no_duplicates(sdk: &aws_config::SdkConfig) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("tag:berth:stack")
        .values("ecs-production")
        .build();
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let addresses = ec2
        .describe_addresses()
        .filters(filter.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        addresses.addresses().len(),
        2,
        "one Elastic IP per NAT gateway"
    );
    let subnets = ec2.describe_subnets().filters(filter).send().await.unwrap();
    assert_eq!(subnets.subnets().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_failing_at_each_mutating_call_converges_when_run_again() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;

    // The infrastructure (no images yet): how many mutating calls a clean up makes.
    engine.recorder().clear();
    up(&engine, &stack, fast()).await.expect("clean up");
    let infra = engine.recorder().mutating().len();
    assert!(infra > 40, "{infra} mutating calls");
    for k in sample(infra) {
        moto.reset();
        fail_then_converge(&engine, &stack, k).await;
        no_duplicates(&sdk).await;
    }

    // The task definitions and services, once the images exist, with autoscaling (a
    // scalable target registered without its policy is finished by the next run).
    let mut stack = stack;
    for (service, target) in stack.services.iter_mut().zip([
        ScalingTarget::CpuPercent(70.0),
        ScalingTarget::RequestsPerTarget(500),
    ]) {
        service.autoscaling = Some(Autoscaling {
            min: 2,
            max: 4,
            target,
            scale_in_cooldown: Duration::from_secs(300),
            scale_out_cooldown: Duration::from_secs(60),
        });
    }
    moto.reset();
    up(&engine, &stack, fast()).await.expect("clean up");
    push_image(&sdk, "frontend-repo", "v1").await;
    push_image(&sdk, "backend-repo", "v1").await;
    engine.recorder().clear();
    up(&engine, &stack, fast()).await.expect("services up");
    let services = engine.recorder().mutating().len();
    assert_eq!(services, 8, "{:?}", engine.recorder().mutating());
    for k in 0..services {
        moto.reset();
        up(&engine, &stack, fast()).await.expect("clean up");
        push_image(&sdk, "frontend-repo", "v1").await;
        push_image(&sdk, "backend-repo", "v1").await;
        fail_then_converge(&engine, &stack, k).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_failing_at_each_mutating_call_converges_when_run_again() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;
    let mut options = fast();
    options.skip_final_snapshot = true;
    up(&engine, &stack, fast()).await.expect("up");
    engine.recorder().clear();
    destroy(&engine, &stack, options).await.expect("clean down");
    let calls = engine.recorder().mutating().len();
    for k in sample(calls) {
        moto.reset();
        up(&engine, &stack, fast()).await.expect("up");
        engine.recorder().fail_mutating_call(Some(k));
        let error = destroy(&engine, &stack, options)
            .await
            .expect_err("injected");
        assert!(
            format!("{error:?}").contains("injected failure"),
            "{error:?}"
        );
        engine.recorder().fail_mutating_call(None);
        destroy(&engine, &stack, options)
            .await
            .unwrap_or_else(|e| panic!("down again after a failure at call {k}: {e:?}"));
        let left = engine.discover(&stack).await.expect("discover").actual;
        assert!(left.is_empty(), "after a failure at call {k}: {left:?}");
        crate::lifecycle_checks::nothing_left(&sdk).await;
    }
}

async fn destroy(engine: &Engine, stack: &Stack, options: Options) -> berth_aws::Result<()> {
    let (snapshot, desired, plan) = engine.plan_down(stack).await?;
    engine
        .destroy(stack, (&snapshot, &desired, &plan), options, &silent())
        .await
        .map(|_| ())
}
