//! Traffic-shifting deployments carried out on a real balancer (ECS-SEMANTICS §3.2–3.3): the
//! share green receives at each step, measured over many requests; blue/green's switch and
//! its rollback during the bake; a failing hook's rollback; no failed request meanwhile.
//! Hooks are real commands; the tests hold a stage by a hook that reads a FIFO, so they act
//! on events, not on timing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use berth_local::balancer::{Balancer, RuleRef};
use berth_local::runtime::{DEFAULT_HOOK_TIMEOUT, ShiftOutcome, ShiftProgress, TrafficShift};
use berth_local::service::shift::{Hook, RollbackCause, Shifting, Stage};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Backend, balancer_with, get, group, healthy_backends_in, within};

/// Requests per measured step: with the weighted random choice, green's count for share p is
/// binomial(400, p); the bands below are at least 5 standard deviations wide.
const REQUESTS: usize = 400;

/// The default rule forwards to `web` (blue); `green` holds the new revision's target.
async fn blue_and_green() -> (Balancer, [Backend; 2]) {
    let lb = balancer_with(vec![group("api"), group("web"), group("green")]).await;
    let backends = healthy_backends_in(&lb, [("web", "blue"), ("green", "green")]).await;
    (lb, backends)
}

fn shift(strategy: Shifting, hooks: &[(&str, String)]) -> TrafficShift {
    TrafficShift {
        rules: vec![RuleRef::Default],
        blue: "web".into(),
        green: "green".into(),
        strategy,
        hooks: hooks
            .iter()
            .map(|(stage, command)| ((*stage).to_owned(), command.clone()))
            .collect::<BTreeMap<_, _>>(),
        hook_timeout: DEFAULT_HOOK_TIMEOUT,
        test_listener: None,
    }
}

/// Green's count among `REQUESTS` requests to `/`; every one must answer 200.
async fn green_count(lb: &Balancer) -> usize {
    let mut green = 0;
    for _ in 0..REQUESTS {
        let reply = get(lb, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        if reply.body.starts_with("green") {
            green += 1;
        } else {
            assert!(reply.body.starts_with("blue"), "{}", reply.body);
        }
    }
    green
}

/// A load loop through the balancer for the whole deployment, counting what is not a 200.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    ok: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(lb: &Balancer) -> Self {
        let (stop, failed, ok) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let task = tokio::spawn({
            let (lb, stop, failed, ok) = (lb.clone(), stop.clone(), failed.clone(), ok.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    if get(&lb, "/").await.status == StatusCode::OK {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Self {
            stop,
            failed,
            ok,
            task,
        }
    }

    /// (answered 200, failed)
    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        within("the load loop", self.task).await.unwrap();
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

/// A FIFO a hook blocks on (`read line < fifo`) until the test releases it.
struct Gate(PathBuf);

impl Gate {
    fn new(dir: &Path) -> Self {
        let path = dir.join("gate");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        Self(path)
    }

    fn hook(&self) -> String {
        format!("read line < '{}'", self.0.display())
    }

    /// Lets the hook reading the FIFO now finish (it approves its stage).
    async fn release(&self) {
        let path = self.0.clone();
        within(
            "the hook to read the gate",
            tokio::task::spawn_blocking(move || std::fs::write(path, "go\n")),
        )
        .await
        .unwrap()
        .unwrap();
    }
}

async fn wait_for(
    progress: &mut watch::Receiver<ShiftProgress>,
    what: &str,
    wanted: impl Fn(&ShiftProgress) -> bool,
) -> ShiftProgress {
    *within(what, progress.wait_for(|p| wanted(p)))
        .await
        .expect("the run publishes until it ends")
}

fn start() -> ShiftProgress {
    ShiftProgress::start()
}

/// Canary then linear: at each production step, while its hook holds it, green gets its
/// configured share of requests (S3.4–S3.6), and blue none once green has 100%.
#[tokio::test]
async fn canary_and_linear_send_their_share_to_green_at_each_step() {
    let cases = [
        (
            Shifting::Canary {
                percent: 20.0,
                canary_bake: Duration::from_millis(100),
                bake_time: Duration::ZERO,
            },
            vec![200, 1000],
        ),
        (
            Shifting::Linear {
                step_percent: 25.0,
                step_bake: Duration::from_millis(100),
                bake_time: Duration::ZERO,
            },
            vec![250, 500, 750, 1000],
        ),
    ];
    for (strategy, shares) in cases {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(dir.path());
        let (lb, _backends) = blue_and_green().await;
        let load = Load::start(&lb);
        let plan = shift(strategy, &[("PRODUCTION_TRAFFIC_SHIFT", gate.hook())]);
        let (progress, mut watch) = watch::channel(start());
        let rollback = CancellationToken::new();
        let run = tokio::spawn({
            let lb = lb.clone();
            async move {
                plan.run(&lb, std::future::ready(()), &rollback, &progress)
                    .await
            }
        });
        for (step, share) in shares.into_iter().enumerate() {
            let at = wait_for(&mut watch, "the step's hook", |p| {
                p.stage == Stage::ProductionTrafficShift(step) && p.hook == Hook::Running
            })
            .await;
            assert_eq!(at.production_green, share, "{strategy:?} step {step}");
            let green = green_count(&lb).await;
            let expected = REQUESTS * share as usize / 1000;
            // p = 0.2 → sd 8; p = 0.25..0.75 → sd ≤ 10: ±60 is over 6 sd.
            let band = if share == 1000 { 0 } else { 60 };
            assert!(
                green.abs_diff(expected) <= band,
                "{strategy:?} step {step}: {green} of {REQUESTS} to green, expected {expected}±{band}"
            );
            eprintln!("{strategy:?} step {step}: {green}/{REQUESTS} to green at {share}‰");
            gate.release().await;
        }
        let outcome = within("the run to end", run).await.unwrap().unwrap();
        assert_eq!(outcome, ShiftOutcome::Completed);
        let (ok, failed) = load.finish().await;
        assert_eq!(failed, 0, "{failed} failed requests during {strategy:?}");
        assert!(ok > 0);
    }
}

/// Blue/green: all production traffic moves at once; a rollback during the bake returns it
/// all to blue at once (S3.8).
#[tokio::test]
async fn blue_green_switches_at_once_and_rolls_back_during_its_bake() {
    let (lb, _backends) = blue_and_green().await;
    let load = Load::start(&lb);
    let plan = shift(
        Shifting::BlueGreen {
            bake_time: Duration::from_secs(3600),
        },
        &[],
    );
    let (progress, mut watch) = watch::channel(start());
    let rollback = CancellationToken::new();
    let run = tokio::spawn({
        let (lb, rollback) = (lb.clone(), rollback.clone());
        async move {
            plan.run(&lb, std::future::ready(()), &rollback, &progress)
                .await
        }
    });
    let baking = wait_for(&mut watch, "the bake", |p| p.stage == Stage::BakeTime).await;
    assert_eq!(baking.production_green, 1000);
    assert_eq!(green_count(&lb).await, REQUESTS, "all of it, at once");

    rollback.cancel();
    let outcome = within("the rollback", run).await.unwrap().unwrap();
    assert_eq!(outcome, ShiftOutcome::RolledBack(RollbackCause::Requested));
    assert_eq!(watch.borrow().production_green, 0);
    assert_eq!(green_count(&lb).await, 0, "all back to blue, at once");
    let (ok, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} failed requests");
    assert!(ok > 0);
}

/// A hook that fails its stage rolls the deployment back, with traffic all on blue (S3.13).
/// The hook approves the first production shift (0% so far) and fails the second (50%).
#[tokio::test]
async fn a_failing_hook_rolls_back_to_blue() {
    let (lb, _backends) = blue_and_green().await;
    let load = Load::start(&lb);
    let plan = shift(
        Shifting::Linear {
            step_percent: 50.0,
            step_bake: Duration::from_millis(100),
            bake_time: Duration::ZERO,
        },
        &[(
            "PRE_PRODUCTION_TRAFFIC_SHIFT",
            r#"[ "$BERTH_GREEN_PRODUCTION_PERCENT" = "0.0" ]"#.to_owned(),
        )],
    );
    let (progress, watch) = watch::channel(start());
    let outcome = within(
        "the run",
        plan.run(
            &lb,
            std::future::ready(()),
            &CancellationToken::new(),
            &progress,
        ),
    )
    .await
    .unwrap();
    assert_eq!(outcome, ShiftOutcome::RolledBack(RollbackCause::HookFailed));
    assert_eq!(
        watch.borrow().stage,
        Stage::PreProductionTrafficShift(1),
        "the second shift's hook failed"
    );
    assert_eq!(green_count(&lb).await, 0, "all back to blue");
    let (ok, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} failed requests");
    assert!(ok > 0);
}

/// A hook that never answers fails its stage once its timeout is over, and the deployment
/// rolls back (S3.12, action ROLLBACK). The hook blocks on a gate nobody opens.
#[tokio::test]
async fn a_hook_past_its_timeout_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path());
    let (lb, _backends) = blue_and_green().await;
    let plan = TrafficShift {
        hook_timeout: Duration::from_millis(200),
        ..shift(
            Shifting::BlueGreen {
                bake_time: Duration::ZERO,
            },
            &[("POST_PRODUCTION_TRAFFIC_SHIFT", gate.hook())],
        )
    };
    let (progress, watch) = watch::channel(start());
    let outcome = within(
        "the run",
        plan.run(
            &lb,
            std::future::ready(()),
            &CancellationToken::new(),
            &progress,
        ),
    )
    .await
    .unwrap();
    assert_eq!(outcome, ShiftOutcome::RolledBack(RollbackCause::HookFailed));
    assert_eq!(watch.borrow().stage, Stage::PostProductionTrafficShift);
    assert_eq!(green_count(&lb).await, 0, "all back to blue");
}
