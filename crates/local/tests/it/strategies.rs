//! Blue/green, canary and linear end to end (ECS-SEMANTICS §3): `berth up` in process with
//! two tasks of the real web app behind the balancer, `berth deploy` and `berth rollback`
//! as binaries, and a load loop counting every request that did not get a 2xx. Green's
//! revision is told apart by the upload limit its page shows (`MAX_FILE_SIZE`). Stages are
//! held by hooks that hand the test a FIFO handshake, so the test acts on events, not timing.

use std::path::{Path, PathBuf};

use berth_local::service::{RolloutState, ServiceHandle};
use berth_testkit::{free_port, http_get};

use crate::release::{Fixture, Load, berth_async, revisions_running, settled, text};
use crate::support::within;

/// Green's upload limit, as its `/upload` page shows it in bytes.
const GREEN_LIMIT: &str = "7340032";
/// The next release's, for the deployment after that.
const NEXT_LIMIT: &str = "5242880";
/// Requests per measured share: green's count for share p is binomial(400, p); the bands
/// below are at least 5 standard deviations wide.
const REQUESTS: usize = 400;

/// Green's count among `REQUESTS` requests to `port`; every one must answer 200.
async fn green_count(port: u16) -> usize {
    count_showing(port, GREEN_LIMIT).await
}

/// How many of `REQUESTS` requests to `port` reached a task showing `limit`.
async fn count_showing(port: u16, limit: &'static str) -> usize {
    tokio::task::spawn_blocking(move || {
        let mut green = 0;
        for _ in 0..REQUESTS {
            let reply = http_get(port, "/upload").expect("the balancer answers");
            assert_eq!(reply.status, 200, "{}", reply.text());
            if reply.text().contains(limit) {
                green += 1;
            }
        }
        green
    })
    .await
    .unwrap()
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

/// A hook that tells the test green's production share when its stage is reached, then
/// holds the stage until the test lets it go (it approves the stage).
struct Handshake {
    reached: PathBuf,
    go: PathBuf,
}

impl Handshake {
    fn new(dir: &Path) -> Self {
        let (reached, go) = (dir.join("reached"), dir.join("go"));
        mkfifo(&reached);
        mkfifo(&go);
        Self { reached, go }
    }

    fn hook(&self) -> String {
        format!(
            "echo $BERTH_GREEN_PRODUCTION_PERCENT > {} && read line < {}",
            self.reached.display(),
            self.go.display()
        )
    }

    /// Waits for the hook to reach its stage; green's production percent then.
    async fn reached(&self) -> String {
        let path = self.reached.clone();
        within(
            "the hook to reach its stage",
            tokio::task::spawn_blocking(move || std::fs::read_to_string(path).unwrap()),
        )
        .await
        .unwrap()
        .trim()
        .to_owned()
    }

    /// Lets the waiting hook approve its stage.
    async fn go(&self) {
        let path = self.go.clone();
        tokio::task::spawn_blocking(move || std::fs::write(path, "go\n").unwrap())
            .await
            .unwrap();
    }
}

/// Waits until the newest deployment is in `stage`, re-checking on each change.
async fn stage(service: &ServiceHandle, stage: &str) {
    let mut changes = service.changes();
    within(&format!("the deployment to reach {stage}"), async {
        while service.status().deployments[0].lifecycle_stage.as_deref() != Some(stage) {
            changes.changed().await.unwrap();
        }
    })
    .await;
}

/// S3.4–S3.6, S3.8, S3.10, S3.19: a canary deployment under load sends its configured
/// share to green after its first shift and all of it after the second, the test listener
/// reaches green before production traffic moves, and blue is drained and stopped once it
/// completes; then a linear deployment, from the alternate target group back to the first,
/// sends each step's share; no request fails meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_and_linear_shift_their_share_at_each_step_and_retire_blue() {
    let fx = Fixture::new();
    let runtime = fx.up().await;
    let web = runtime.services()[0].clone();
    let load = Load::start(fx.port);
    let gate = Handshake::new(fx.dir.path());
    let test_port = free_port();
    fx.edit(&format!(
        r#"environment = {{ MAX_FILE_SIZE = "{GREEN_LIMIT}" }}
deployment = {{ strategy = "canary", canary_percent = 20, canary_bake = "0s", bake_time = "0s", test_listener_port = {test_port}, hooks = {{ production_traffic_shift = '{}' }} }}"#,
        gate.hook()
    ));
    let deploy = tokio::spawn({
        let stack_file = fx.stack_file.clone();
        async move { berth_async(&stack_file, &["deploy", "web"]).await }
    });

    // The canary step: 20% of production, all of the test listener's traffic.
    assert_eq!(gate.reached().await, "20.0");
    let green = green_count(fx.port).await;
    assert!(
        (40..=120).contains(&green),
        "green got {green} of {REQUESTS}"
    );
    assert_eq!(
        green_count(test_port).await,
        REQUESTS,
        "the test listener reaches green"
    );
    let running = revisions_running(&web);
    assert_eq!(
        running,
        ["web-task:1", "web-task:1", "web-task:2", "web-task:2"],
        "blue and green side by side"
    );
    gate.go().await;

    // The rest at once.
    assert_eq!(gate.reached().await, "100.0");
    assert_eq!(green_count(fx.port).await, REQUESTS);
    gate.go().await;

    let out = within("berth deploy to end", deploy).await.unwrap();
    assert!(
        out.status.success(),
        "deploy: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    settled(&web).await;
    assert_eq!(revisions_running(&web), ["web-task:2", "web-task:2"]);
    let status = web.status();
    assert_eq!(status.target_group.as_deref(), Some("web-tg-alt"));
    assert_eq!(status.deployments[0].rollout_state, RolloutState::Completed);
    assert_eq!(green_count(fx.port).await, REQUESTS);
    let groups = runtime.status().target_groups;
    let weights: Vec<(&str, f64)> = groups
        .iter()
        .flat_map(|g| {
            g.weights
                .iter()
                .map(|w| (g.target_group_name.as_str(), w.percent))
        })
        .collect();
    assert_eq!(
        weights,
        [("web-tg", 0.0), ("web-tg-alt", 100.0)],
        "{groups:?}"
    );

    // Linear, 40% a step: 40%, 80%, then 100% (S3.5); the groups swap roles (S3.19).
    fx.edit(&format!(
        r#"environment = {{ MAX_FILE_SIZE = "{NEXT_LIMIT}" }}
deployment = {{ strategy = "linear", linear_step_percent = 40, linear_bake = "0s", bake_time = "0s", hooks = {{ production_traffic_shift = '{}' }} }}"#,
        gate.hook()
    ));
    let deploy = tokio::spawn({
        let stack_file = fx.stack_file.clone();
        async move { berth_async(&stack_file, &["deploy", "web"]).await }
    });
    for (percent, band) in [("40.0", 110..=210), ("80.0", 280..=360)] {
        assert_eq!(gate.reached().await, percent);
        let green = count_showing(fx.port, NEXT_LIMIT).await;
        assert!(
            band.contains(&green),
            "at {percent}% green got {green} of {REQUESTS}"
        );
        gate.go().await;
    }
    assert_eq!(gate.reached().await, "100.0");
    assert_eq!(count_showing(fx.port, NEXT_LIMIT).await, REQUESTS);
    gate.go().await;
    let out = within("berth deploy to end", deploy).await.unwrap();
    assert!(out.status.success(), "deploy: {}", text(&out.stderr));
    settled(&web).await;
    assert_eq!(revisions_running(&web), ["web-task:3", "web-task:3"]);
    assert_eq!(web.status().target_group.as_deref(), Some("web-tg"));

    let (ok, failed, failures) = load.finish();
    eprintln!(
        "requests during the canary and linear deployments: {ok} answered 2xx, {failed} failed"
    );
    assert_eq!(failed, 0, "failed requests: {failures:?}");
    runtime.shutdown().await;
}

/// `berth deploy` exited 1 saying `why`, and the service settled on revision 1 (blue).
async fn rolled_back_to_blue(out: &std::process::Output, why: &str, web: &ServiceHandle) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    settled(web).await;
    assert_eq!(revisions_running(web), ["web-task:1", "web-task:1"]);
}

/// S3.8, S3.13, S2.15: blue/green switches all production traffic at once and `berth
/// rollback` during its bake returns it to blue at once and stops green; a failing hook
/// rolls back the same way, and so does the circuit breaker; no request fails meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_rolls_back_during_its_bake_on_a_failing_hook_and_by_the_breaker() {
    let fx = Fixture::new();
    let runtime = fx.up().await;
    let web = runtime.services()[0].clone();
    let load = Load::start(fx.port);
    fx.edit(&format!(
        r#"environment = {{ MAX_FILE_SIZE = "{GREEN_LIMIT}" }}
deployment = {{ strategy = "blue_green", bake_time = "60m" }}"#
    ));
    let deploy = tokio::spawn({
        let stack_file = fx.stack_file.clone();
        async move { berth_async(&stack_file, &["deploy", "web"]).await }
    });
    stage(&web, "BAKE_TIME").await;
    assert_eq!(green_count(fx.port).await, REQUESTS, "all at once");
    let out = berth_async(&fx.stack_file, &["rollback", "web"]).await;
    assert!(
        out.status.success(),
        "rollback: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(green_count(fx.port).await, 0, "all back on blue");
    let out = within("berth deploy to end", deploy).await.unwrap();
    rolled_back_to_blue(&out, "stopped: rolling back to deploymentId", &web).await;

    // A hook that fails its stage: the release never gets production traffic.
    fx.edit(&format!(
        r#"environment = {{ MAX_FILE_SIZE = "{GREEN_LIMIT}" }}
deployment = {{ strategy = "blue_green", bake_time = "60m", hooks = {{ post_test_traffic_shift = "exit 1" }} }}"#
    ));
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    rolled_back_to_blue(
        &out,
        "the POST_TEST_TRAFFIC_SHIFT lifecycle hook failed",
        &web,
    )
    .await;
    assert_eq!(green_count(fx.port).await, 0);

    // Green's tasks exit at start: the circuit breaker fails the deployment during
    // SCALE_UP, before any traffic moved, and blue keeps serving (S2.6, S3.8).
    fx.edit(
        r#"environment = { MAX_FILE_SIZE = "lots" }
deployment = { strategy = "blue_green", bake_time = "60m" }"#,
    );
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    let reason = "FAILED: ECS deployment circuit breaker: tasks failed to start.";
    rolled_back_to_blue(&out, reason, &web).await;

    let (ok, failed, failures) = load.finish();
    eprintln!("requests during the blue/green deployments: {ok} answered 2xx, {failed} failed");
    assert_eq!(failed, 0, "failed requests: {failures:?}");
    runtime.shutdown().await;
}
