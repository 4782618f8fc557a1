//! The runtime's ordered shutdown, observed by a load balancer double that records every
//! call and, at each call, whether the target's task has been sent SIGTERM yet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_local::cleanup::RunState;
use berth_local::runtime::{NoSecrets, RunStateFile, Runtime, RuntimeParts, StackLauncher};
use berth_local::service::{
    BoxFuture, BoxStream, RuleWeight, TargetHealthView, TargetRouter, TargetState,
};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::control::{settings, sleeper};
use crate::support::{process_gone, within};

/// One call the runtime made, in the order it made them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Deregister(u16),
    DrainStarted(u16),
    Drained(u16),
    /// A shutdown step (the balancer, the database) began.
    Stopping(&'static str),
}

/// What the double saw at the moment of a step.
#[derive(Debug, Clone)]
struct Seen {
    step: Step,
    /// The task behind the target had been sent SIGTERM (pending, or already dead).
    signalled: bool,
    /// Every task process was gone (for shutdown steps).
    all_tasks_gone: bool,
}

#[derive(Clone)]
struct Log {
    run_dir: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    pids: Arc<Mutex<HashMap<u16, u32>>>,
}

impl Log {
    fn record(&self, step: Step) {
        let port = match step {
            Step::Deregister(p) | Step::DrainStarted(p) | Step::Drained(p) => Some(p),
            Step::Stopping(_) => None,
        };
        // The launcher records each task (pid, port) in the recovery file as it starts.
        if let Ok(Some(state)) = RunState::read(&self.run_dir) {
            let mut pids = self.pids.lock().unwrap();
            for task in state.tasks {
                pids.insert(task.port, task.pid);
            }
        }
        let pids = self.pids.lock().unwrap().clone();
        let signalled = port.is_some_and(|p| sigterm_sent(pids[&p]));
        let all_tasks_gone = pids.values().all(|pid| process_gone(*pid));
        self.seen.lock().unwrap().push(Seen {
            step,
            signalled,
            all_tasks_gone,
        });
    }
}

/// Whether `pid` has been sent SIGTERM: it is pending (`SigPnd`/`ShdPnd` bit 15), or the
/// process died of it already. Sending a signal is synchronous, so this cannot miss one
/// sent before it looks.
fn sigterm_sent(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    if process_gone(pid) {
        return true;
    }
    const SIGTERM_BIT: u64 = 1 << (15 - 1);
    const SIGKILL_BIT: u64 = 1 << (9 - 1);
    status.lines().any(|line| {
        ["SigPnd:", "ShdPnd:"].iter().any(|field| {
            line.strip_prefix(field)
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                .is_some_and(|mask| mask & (SIGTERM_BIT | SIGKILL_BIT) != 0)
        })
    })
}

/// A load balancer whose targets are healthy once registered, and whose drain takes a
/// moment (so a SIGTERM sent during it would be seen at its end).
struct RecordingRouter {
    log: Log,
    targets: Mutex<HashMap<SocketAddr, TargetState>>,
    changes: watch::Sender<()>,
}

impl TargetRouter for RecordingRouter {
    fn register(&self, _tg: &str, target: SocketAddr) {
        self.targets
            .lock()
            .unwrap()
            .insert(target, TargetState::Healthy);
        self.changes.send_replace(());
    }
    fn deregister(&self, _tg: &str, target: SocketAddr) {
        self.log.record(Step::Deregister(target.port()));
        self.targets.lock().unwrap().remove(&target);
        self.changes.send_replace(());
    }
    fn wait_drained(&self, _tg: &str, target: SocketAddr) -> BoxFuture<'static, ()> {
        self.log.record(Step::DrainStarted(target.port()));
        let log = self.log.clone();
        Box::pin(async move {
            // The in-flight requests of a real drain; not a synchronisation.
            tokio::time::sleep(Duration::from_millis(50)).await;
            log.record(Step::Drained(target.port()));
        })
    }
    fn target_health(&self, _tg: &str) -> Vec<TargetHealthView> {
        self.targets
            .lock()
            .unwrap()
            .iter()
            .map(|(target, state)| TargetHealthView {
                target: *target,
                state: *state,
                reason: None,
                description: None,
            })
            .collect()
    }
    fn traffic_weights(&self, _tg: &str) -> Vec<RuleWeight> {
        Vec::new()
    }
    fn health_changes(&self, _tg: &str) -> BoxStream<'static, ()> {
        futures_util::stream::unfold(self.changes.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
        .boxed()
    }
}

/// `berth down` / Ctrl-C: each target is deregistered, then drained, and only then is its
/// task sent SIGTERM; the balancer and then the database stop after every task is gone.
#[tokio::test]
async fn shutdown_deregisters_drains_then_sigterms_each_task_then_stops_balancer_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let log = Log {
        run_dir: run.clone(),
        seen: Arc::default(),
        pids: Arc::default(),
    };
    let router = Arc::new(RecordingRouter {
        log: log.clone(),
        targets: Mutex::default(),
        changes: watch::Sender::new(()),
    });
    let state_file = Arc::new(RunStateFile::new(run.clone()));
    let launcher = StackLauncher {
        templates: [("worker:1".to_owned(), sleeper())].into_iter().collect(),
        secrets: Arc::new(NoSecrets),
        logs: None,
        state_file: Some(Arc::clone(&state_file)),
        user: None,
    };
    let mut service = settings("worker", 2);
    service.target_group = Some("worker-tg".into());
    let step = |name: &'static str, log: Log| -> berth_local::runtime::ShutdownStep {
        Box::new(move || Box::pin(async move { log.record(Step::Stopping(name)) }))
    };
    let runtime = Runtime::start(RuntimeParts {
        stack: "test".into(),
        environment: "local".into(),
        url: "http://127.0.0.1:1".into(),
        run_dir: run.clone(),
        state_file,
        services: vec![service],
        autoscaling: vec![],
        launcher: Arc::new(launcher),
        releases: None,
        router: Some(router),
        local_differences: vec![],
        postgres: None,
        database: None,
        shutdown_steps: vec![
            ("the load balancer".into(), step("balancer", log.clone())),
            ("the database".into(), step("database", log.clone())),
        ],
        control_socket: false,
    })
    .unwrap();
    within("steady state", runtime.wait_steady()).await;
    let ports: Vec<u16> = runtime.status().services[0]
        .tasks
        .iter()
        .map(|t| t.task.port)
        .collect();
    assert_eq!(ports.len(), 2);

    within("the shutdown", runtime.shutdown()).await;

    let seen = log.seen.lock().unwrap().clone();
    for port in &ports {
        let of_task: Vec<&Seen> = seen
            .iter()
            .filter(|s| {
                matches!(s.step, Step::Deregister(p) | Step::DrainStarted(p) | Step::Drained(p) if p == *port)
            })
            .collect();
        let steps: Vec<Step> = of_task.iter().map(|s| s.step.clone()).collect();
        assert_eq!(
            steps,
            [
                Step::Deregister(*port),
                Step::DrainStarted(*port),
                Step::Drained(*port)
            ],
            "{seen:#?}"
        );
        assert!(
            of_task.iter().all(|s| !s.signalled),
            "SIGTERM before the drain ended: {seen:#?}"
        );
    }
    // Each task was then stopped by SIGTERM (exit 143), not killed.
    for task in &runtime.status().services[0].tasks {
        assert_eq!(task.task.exit_code, Some(143), "{task:?}");
    }
    let last: Vec<&Seen> = seen.iter().rev().take(2).rev().collect();
    assert_eq!(
        last.iter().map(|s| s.step.clone()).collect::<Vec<_>>(),
        [Step::Stopping("balancer"), Step::Stopping("database")]
    );
    assert!(last.iter().all(|s| s.all_tasks_gone), "{seen:#?}");
}
