//! Releases end to end: `berth up` in process with two tasks of the real web app behind the
//! balancer, the `berth` binary for `deploy`, `rollback` and `deployments`, and a load loop
//! that counts every request that did not get a 2xx (connection errors included) while the
//! releases run: a good one, one whose tasks exit at start, one whose health checks fail,
//! and a rollback of a settled service.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use berth_local::runtime::{Runtime, UpOptions, up};
use berth_local::service::{RolloutState, ServiceHandle};
use berth_testkit::{bin_path, free_port, http_get};
use tokio_util::sync::CancellationToken;

use crate::support::within;

/// One web service, two tasks, fast local health checks, a short deregistration delay.
pub(crate) fn stack_text(port: u16, extra: &str) -> String {
    format!(
        r#"
[stack]
name = "release-test"

[environments.local]
listen = "127.0.0.1:{port}"
health_check_interval = "1s"
health_check_timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2
deregistration_delay = "2s"

[load_balancer]
default_service = "web"

[services.web]
port = 80
desired_count = 2
build = {{ context = ".", command = "true", artifact = "{}" }}
health_check = {{ path = "/health" }}
{extra}
"#,
        bin_path("file-analyzer-web").display()
    )
}

fn berth(stack_file: &Path, args: &[&str]) -> Output {
    Command::new(bin_path("berth"))
        .arg("--file")
        .arg(stack_file)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs `berth` off the async runtime (it talks to the runtime this test drives).
pub(crate) async fn berth_async(stack_file: &Path, args: &[&str]) -> Output {
    let stack_file = stack_file.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        berth(&stack_file, &args)
    })
    .await
    .unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Requests `/health` through the balancer back to back until stopped; counts outcomes.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<Vec<String>>>,
}

impl Load {
    pub(crate) fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match http_get(port, "/health") {
                        Some(r) if (200..300).contains(&r.status) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            failures.push(format!("{:?}", other.map(|r| r.status)));
                        }
                    }
                }
                failures
            })
        };
        Self {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }

    pub(crate) fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Stops the loop; (successes, failures, how the failures failed).
    pub(crate) fn finish(mut self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.thread.take().unwrap().join().unwrap();
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            failures,
        )
    }
}

/// Waits until the newest deployment of `service` is COMPLETED, re-checking on each change.
pub(crate) async fn settled(service: &ServiceHandle) {
    let mut changes = service.changes();
    within("the service to settle", async {
        while service.status().deployments.len() != 1
            || service.status().deployments[0].rollout_state != RolloutState::Completed
        {
            changes.changed().await.unwrap();
        }
    })
    .await;
}

pub(crate) fn revisions_running(service: &ServiceHandle) -> Vec<String> {
    let mut revisions: Vec<String> = service
        .status()
        .tasks
        .into_iter()
        .filter(|t| t.task.last_status == berth_local::task::TaskStatus::Running)
        .map(|t| t.task_definition)
        .collect();
    revisions.sort();
    revisions
}

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) stack_file: PathBuf,
    pub(crate) port: u16,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let stack_file = dir.path().join("berth.toml");
        std::fs::write(&stack_file, stack_text(port, "")).unwrap();
        Self {
            dir,
            stack_file,
            port,
        }
    }

    /// The stack file as it will be deployed next.
    pub(crate) fn edit(&self, extra: &str) {
        std::fs::write(&self.stack_file, stack_text(self.port, extra)).unwrap();
    }

    pub(crate) async fn up(&self) -> Runtime {
        let stack = berth_spec::load(&self.stack_file).unwrap();
        let options = UpOptions {
            environment: "local".into(),
            control_socket: true,
            interrupt: CancellationToken::new(),
        };
        let (runtime, _) = up(&stack, &options, Arc::new(|_| {})).await.unwrap();
        within("every target healthy", runtime.wait_steady()).await;
        runtime
    }
}

/// S1.2–S1.5 and S2.6–S2.12 under load: every release, good or bad, and the rollback keep
/// every request answered with a 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_under_load_fail_no_request() {
    let fx = Fixture::new();
    let runtime = fx.up().await;
    let web = runtime.services()[0].clone();
    // `berth status` shows the service's target group with all of the default rule's traffic.
    let groups = runtime.status().target_groups;
    let weights: Vec<(&str, &str, f64)> = groups
        .iter()
        .flat_map(|g| {
            g.weights
                .iter()
                .map(|w| (g.target_group_name.as_str(), w.rule.as_str(), w.percent))
        })
        .collect();
    assert_eq!(weights, [("web-tg", "default", 100.0)], "{groups:?}");
    let load = Load::start(fx.port);

    // A good release: exit 0, every task replaced by revision 2.
    let (ok_before, started) = (load.ok(), std::time::Instant::now());
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    // A figure for BENCHMARKS.md, not an assertion.
    eprintln!(
        "rolling deploy 2 -> 2: {:?} (berth deploy, build `true` included), {} requests meanwhile",
        started.elapsed(),
        load.ok() - ok_before
    );
    assert!(
        out.status.success(),
        "deploy: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("completed: web-task:2"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(revisions_running(&web), ["web-task:2", "web-task:2"]);

    // Tasks that exit at start (the app refuses its configuration): the breaker stops the
    // release and rolls back to revision 2, exit 1 with the reason.
    fx.edit(r#"environment = { MAX_FILE_SIZE = "lots" }"#);
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("FAILED: ECS deployment circuit breaker: tasks failed to start."),
        "{stderr}"
    );
    assert!(stderr.contains("rolling back with deployment"), "{stderr}");
    settled(&web).await;
    assert_eq!(revisions_running(&web), ["web-task:2", "web-task:2"]);

    // Health checks that fail (a container check that never passes): the same.
    fx.edit(
        r#"container_health_check = { command = ["CMD-SHELL", "exit 1"], interval = "5s", retries = 1 }"#,
    );
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("FAILED: ECS deployment circuit breaker"),
        "{}",
        text(&out.stderr)
    );
    settled(&web).await;
    assert!(
        web.status()
            .events
            .iter()
            .any(|e| e.message.ends_with("failed container health checks.")),
        "the tasks were replaced for failing their container health checks"
    );
    assert_eq!(revisions_running(&web), ["web-task:2", "web-task:2"]);

    // A settled service rolls back to the release before the running one: revision 1 (the
    // rollbacks to 2 do not count as releases).
    fx.edit("");
    let out = berth_async(&fx.stack_file, &["rollback", "web"]).await;
    assert!(
        out.status.success(),
        "rollback: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(revisions_running(&web), ["web-task:1", "web-task:1"]);
    let served_during = load.ok();

    let (ok, failed, failures) = load.finish();
    eprintln!("requests during the releases: {ok} answered 2xx, {failed} failed");
    assert_eq!(
        failed, 0,
        "failed requests during the releases: {failures:?}"
    );
    assert!(ok >= served_during && ok > 0);

    let out = berth_async(&fx.stack_file, &["deployments", "web", "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<(String, String, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["taskDefinition"].as_str().unwrap().to_owned(),
                d["rolloutState"].as_str().unwrap().to_owned(),
                d["rollback"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, bool)> = [
        ("web-task:1", "COMPLETED", true),
        ("web-task:2", "COMPLETED", true),
        ("web-task:4", "FAILED", false),
        ("web-task:2", "COMPLETED", true),
        ("web-task:3", "FAILED", false),
        ("web-task:2", "COMPLETED", false),
        ("web-task:1", "COMPLETED", false),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c))
    .collect();
    assert_eq!(outcomes, expected);
    runtime.shutdown().await;
}

/// `berth deploy` is UpdateService with the file as it is now: the desired count, the
/// deployment's min/max percent and the grace period come with the new revision (S1.2–S1.4,
/// S1.12), not only the task template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_takes_the_service_settings_of_the_edited_file() {
    let fx = Fixture::new();
    let runtime = fx.up().await;
    let web = runtime.services()[0].clone();
    let before = web.status();
    assert_eq!(
        (
            before.desired_count,
            before.deployment_configuration.minimum_healthy_percent,
            before.deployment_configuration.maximum_percent,
            before.health_check_grace_period_seconds
        ),
        (2, 100, 200, 0)
    );
    let edited = stack_text(
        fx.port,
        r#"deployment = { minimum_healthy_percent = 50, maximum_percent = 150, health_check_grace_period = "7s" }"#,
    )
    .replace("desired_count = 2", "desired_count = 3");
    std::fs::write(&fx.stack_file, edited).unwrap();
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    assert!(
        out.status.success(),
        "deploy: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let after = web.status();
    assert_eq!(
        (
            after.desired_count,
            after.deployment_configuration.minimum_healthy_percent,
            after.deployment_configuration.maximum_percent,
            after.health_check_grace_period_seconds
        ),
        (3, 50, 150, 7)
    );
    assert_eq!(
        revisions_running(&web),
        ["web-task:2", "web-task:2", "web-task:2"]
    );
    runtime.shutdown().await;
}

/// S5.20: the old tasks of a release stop as soon as their targets have nothing in flight,
/// but `berth status` shows those targets as `draining` until the deregistration delay ends
/// (60 s here), on the stopped tasks and in the target group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_tasks_show_draining_until_the_delay_ends() {
    let fx = Fixture::new();
    let slow_drain = stack_text(fx.port, "").replace(
        "deregistration_delay = \"2s\"",
        "deregistration_delay = \"60s\"",
    );
    std::fs::write(&fx.stack_file, &slow_drain).unwrap();
    let runtime = fx.up().await;
    let web = runtime.services()[0].clone();
    let out = berth_async(&fx.stack_file, &["deploy", "web"]).await;
    assert!(
        out.status.success(),
        "deploy: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let status = web.status();
    let old: Vec<_> = status
        .tasks
        .iter()
        .filter(|t| t.task_definition == "web-task:1")
        .collect();
    assert_eq!(old.len(), 2, "{status:?}");
    for task in &old {
        assert_eq!(
            task.task.last_status,
            berth_local::task::TaskStatus::Stopped
        );
        assert_eq!(
            task.target_health.as_ref().map(|h| h.state),
            Some(berth_local::service::TargetState::Draining),
            "{task:?}"
        );
    }
    let report = runtime.status();
    let draining = report.target_groups[0]
        .targets
        .iter()
        .filter(|t| t.state == berth_local::service::TargetState::Draining)
        .count();
    assert_eq!(draining, 2, "{report:?}");
    runtime.shutdown().await;
}
