//! The service scheduler: the pure planner (table tests) and the controller with real
//! processes (replacement after kill -9, unhealthy-target replacement start-before-stop, both
//! acted upon as they happen rather than at a polling tick).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_local::runtime::RuntimeEvent;
use berth_local::service::{
    Action, BoxFuture, BoxStream, DeploymentConfiguration, RolloutState, ServiceController,
    ServiceSettings, ServiceView, TargetHealthView, TargetRouter, TargetState, TaskLauncher,
    TaskView, UnhealthyCause, plan,
};
use berth_local::task::{
    DesiredStatus, HealthStatus, StopCode, Task, TaskId, TaskSpec, TaskStatus, free_port,
};
use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::support::{eventually, shell_task, within};

const DEPLOYMENT: &str = "ecs-svc/1234567890123456789";
const TG: &str = "targetgroup/backend-tg";

// ---- planner tables ------------------------------------------------------------------------

fn target(port: u16, state: TargetState) -> TargetHealthView {
    TargetHealthView {
        target: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        state,
        reason: (state == TargetState::Unhealthy).then(|| "Target.Timeout".to_owned()),
        description: (state == TargetState::Unhealthy).then(|| "Request timed out".to_owned()),
    }
}

/// A RUNNING task `n` (port 4000 + n), 60 s old, with its target in `state`.
fn running(n: u16, state: TargetState) -> TaskView {
    TaskView {
        id: TaskId::from(format!("{n:032x}")),
        last_status: TaskStatus::Running,
        desired_status: DesiredStatus::Running,
        age: Duration::from_secs(60),
        container_check: None,
        target: Some(target(4000 + n, state)),
        unhealthy: None,
    }
}

fn view(desired: u32, tasks: Vec<TaskView>) -> ServiceView {
    ServiceView {
        name: "backend".to_owned(),
        desired_count: desired,
        configuration: DeploymentConfiguration::default(),
        grace_period: Duration::ZERO,
        target_group: Some(TG.to_owned()),
        primary_deployment: DEPLOYMENT.to_owned(),
        tasks,
        throttled: false,
    }
}

fn start(count: u32) -> Action {
    Action::StartTasks {
        deployment: DEPLOYMENT.to_owned(),
        count,
    }
}

fn id(n: u16) -> TaskId {
    TaskId::from(format!("{n:032x}"))
}

fn elb_cause(n: u16) -> UnhealthyCause {
    UnhealthyCause::TargetGroup {
        target_group: TG.to_owned(),
        port: 4000 + n,
        description: "Request timed out".to_owned(),
    }
}

fn elb_stop(n: u16) -> Action {
    Action::StopTask {
        task: id(n),
        code: StopCode::ServiceSchedulerInitiated,
        reason: format!("Task failed ELB health checks in (target-group {TG})"),
    }
}

#[test]
fn planner_tables() {
    use TargetState::{Healthy, Initial, Unhealthy};
    let marked = |n, state| TaskView {
        unhealthy: Some(elb_cause(n)),
        ..running(n, state)
    };
    let stopping = |n| TaskView {
        desired_status: DesiredStatus::Stopped,
        last_status: TaskStatus::Deactivating,
        ..running(n, Healthy)
    };
    let cases: Vec<(&str, ServiceView, Vec<Action>)> = vec![
        (
            "nothing yet: start desired",
            view(2, vec![]),
            vec![start(2)],
        ),
        (
            "all healthy: steady",
            view(2, vec![running(1, Healthy), running(2, Healthy)]),
            vec![Action::SteadyState],
        ),
        (
            "still initial: wait, not steady",
            view(2, vec![running(1, Healthy), running(2, Initial)]),
            vec![],
        ),
        (
            "a task crashed: replace it",
            view(2, vec![running(1, Healthy)]),
            vec![start(1)],
        ),
        (
            "throttled: hold the start",
            ServiceView {
                throttled: true,
                ..view(2, vec![running(1, Healthy)])
            },
            vec![Action::Throttled],
        ),
        (
            "newly unhealthy: mark it and start a replacement first",
            view(2, vec![running(1, Healthy), running(2, Unhealthy)]),
            vec![
                Action::MarkUnhealthy {
                    task: id(2),
                    cause: elb_cause(2),
                },
                start(1),
            ],
        ),
        (
            "replacement not healthy yet: keep the unhealthy task",
            view(
                2,
                vec![
                    running(1, Healthy),
                    marked(2, Unhealthy),
                    running(3, Initial),
                ],
            ),
            vec![],
        ),
        (
            "replacement healthy: stop the unhealthy task",
            view(
                2,
                vec![
                    running(1, Healthy),
                    marked(2, Unhealthy),
                    running(3, Healthy),
                ],
            ),
            vec![elb_stop(2)],
        ),
        (
            "unhealthy inside the grace period: ignored",
            ServiceView {
                grace_period: Duration::from_secs(120),
                ..view(2, vec![running(1, Healthy), running(2, Unhealthy)])
            },
            vec![],
        ),
        (
            "max 100%: no room for a replacement, stop one by one (min healthy 50%)",
            ServiceView {
                configuration: DeploymentConfiguration {
                    minimum_healthy_percent: 50,
                    maximum_percent: 100,
                },
                ..view(2, vec![running(1, Healthy), marked(2, Unhealthy)])
            },
            vec![elb_stop(2)],
        ),
        (
            // S1.14/S1.15: an unhealthy task does not count toward the minimum, so stopping
            // it keeps minimumHealthyPercent; ECS keeps replacing it (it used to be stuck).
            "max 100% and min 100%: no room, stop the unhealthy task to free some",
            ServiceView {
                configuration: DeploymentConfiguration {
                    minimum_healthy_percent: 100,
                    maximum_percent: 100,
                },
                ..view(2, vec![running(1, Healthy), marked(2, Unhealthy)])
            },
            vec![elb_stop(2)],
        ),
        (
            // S1.14/S1.15: 100/200 with the replacements unhealthy too; it used to stay at
            // four unhealthy tasks for good, even after the app recovered.
            "all four unhealthy at max 200%: stop one to free room for a replacement",
            view(
                2,
                vec![
                    marked(1, Unhealthy),
                    marked(2, Unhealthy),
                    marked(3, Unhealthy),
                    marked(4, Unhealthy),
                ],
            ),
            vec![elb_stop(1)],
        ),
        (
            "one healthy and three unhealthy at max 200%: stop one unhealthy",
            view(
                2,
                vec![
                    running(1, Healthy),
                    marked(2, Unhealthy),
                    marked(3, Unhealthy),
                    marked(4, Unhealthy),
                ],
            ),
            vec![elb_stop(2)],
        ),
        (
            "unhealthy task freed room: its replacement starts",
            view(
                2,
                vec![
                    stopping(1),
                    marked(2, Unhealthy),
                    marked(3, Unhealthy),
                    marked(4, Unhealthy),
                ],
            ),
            vec![start(1)],
        ),
        (
            "scale in: stop the task not yet healthy first",
            view(1, vec![running(1, Healthy), running(2, Initial)]),
            vec![Action::StopTask {
                task: id(2),
                code: StopCode::ServiceSchedulerInitiated,
                reason: format!("Scaling activity initiated by (deployment {DEPLOYMENT})"),
            }],
        ),
        (
            "a task being stopped does not count: not steady until it is gone",
            view(1, vec![running(1, Healthy), stopping(2)]),
            vec![],
        ),
        (
            "scale to zero",
            view(0, vec![running(1, Healthy)]),
            vec![Action::StopTask {
                task: id(1),
                code: StopCode::ServiceSchedulerInitiated,
                reason: format!("Scaling activity initiated by (deployment {DEPLOYMENT})"),
            }],
        ),
    ];
    for (name, view, expected) in cases {
        assert_eq!(plan(&view), expected, "case: {name}");
    }
}

#[test]
fn container_health_check_failure_is_replaced_with_its_own_reason() {
    let mut sick = running(2, TargetState::Healthy);
    sick.container_check = Some(HealthStatus::Unhealthy);
    let mut well = running(1, TargetState::Healthy);
    well.container_check = Some(HealthStatus::Healthy);
    let mut replacement = running(3, TargetState::Healthy);
    replacement.container_check = Some(HealthStatus::Healthy);

    let actions = plan(&view(2, vec![well.clone(), sick.clone()]));
    assert_eq!(
        actions,
        vec![
            Action::MarkUnhealthy {
                task: id(2),
                cause: UnhealthyCause::ContainerHealthCheck
            },
            start(1)
        ]
    );
    sick.unhealthy = Some(UnhealthyCause::ContainerHealthCheck);
    let actions = plan(&view(2, vec![well, sick, replacement]));
    assert_eq!(
        actions,
        vec![Action::StopTask {
            task: id(2),
            code: StopCode::ServiceSchedulerInitiated,
            reason: "Task failed container health checks".to_owned(),
        }]
    );
}

#[test]
fn replacements_respect_maximum_percent() {
    use TargetState::{Healthy, Unhealthy};
    // desired 4, max 125% → 5 tasks at most: one replacement at a time.
    let v = ServiceView {
        configuration: DeploymentConfiguration {
            minimum_healthy_percent: 50,
            maximum_percent: 125,
        },
        ..view(
            4,
            vec![
                running(1, Healthy),
                running(2, Healthy),
                running(3, Unhealthy),
                running(4, Unhealthy),
            ],
        )
    };
    let starts: Vec<_> = plan(&v)
        .into_iter()
        .filter(|a| matches!(a, Action::StartTasks { .. }))
        .collect();
    assert_eq!(starts, vec![start(1)]);
}

// ---- controller with real processes --------------------------------------------------------

/// Launches `sh` tasks running `script`; counts the launches.
struct ShellLauncher {
    script: String,
    launched: watch::Sender<u32>,
}

impl ShellLauncher {
    fn new(script: &str) -> Arc<Self> {
        Arc::new(Self {
            script: script.to_owned(),
            launched: watch::Sender::new(0),
        })
    }
}

impl TaskLauncher for ShellLauncher {
    fn launch<'a>(
        &'a self,
        _service: &'a str,
        _deployment: &'a str,
        id: TaskId,
    ) -> BoxFuture<'a, Task> {
        Box::pin(async move {
            let mut spec: TaskSpec = shell_task(&self.script);
            spec.stop_timeout = Duration::from_secs(5);
            self.launched.send_modify(|n| *n += 1);
            Task::start(id, spec, free_port().unwrap())
        })
    }
}

/// A load balancer whose targets' health the test decides (healthy unless told otherwise).
#[derive(Default)]
struct FakeRouter {
    targets: Mutex<HashMap<SocketAddr, TargetState>>,
    deregistered: Mutex<Vec<SocketAddr>>,
    /// Bumped on every change of `targets`.
    changes: watch::Sender<()>,
}

impl FakeRouter {
    fn set(&self, addr: SocketAddr, state: TargetState) {
        self.targets.lock().unwrap().insert(addr, state);
        self.changes.send_replace(());
    }
}

impl TargetRouter for FakeRouter {
    fn register(&self, _tg: &str, target: SocketAddr) {
        self.set(target, TargetState::Healthy);
    }
    fn deregister(&self, _tg: &str, target: SocketAddr) {
        self.targets.lock().unwrap().remove(&target);
        self.deregistered.lock().unwrap().push(target);
        self.changes.send_replace(());
    }
    fn wait_drained(&self, _tg: &str, _target: SocketAddr) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    fn target_health(&self, _tg: &str) -> Vec<TargetHealthView> {
        self.targets
            .lock()
            .unwrap()
            .iter()
            .map(|(addr, state)| TargetHealthView {
                target: *addr,
                state: *state,
                reason: None,
                description: (*state == TargetState::Unhealthy)
                    .then(|| "Health checks failed with these codes: [500]".to_owned()),
            })
            .collect()
    }
    fn health_changes(&self, _tg: &str) -> BoxStream<'static, ()> {
        futures_util::stream::unfold(self.changes.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
        .boxed()
    }
}

fn settings(desired: u32, target_group: Option<&str>) -> ServiceSettings {
    ServiceSettings {
        name: "backend".to_owned(),
        desired_count: desired,
        configuration: DeploymentConfiguration::default(),
        grace_period: Duration::ZERO,
        target_group: target_group.map(str::to_owned),
        container_health_check: false,
        task_definition: "backend:1".to_owned(),
        image: "backend@sha256:test".to_owned(),
    }
}

fn running_pids(status: &berth_local::service::ServiceStatus) -> Vec<u32> {
    status
        .tasks
        .iter()
        .filter(|t| t.task.last_status == TaskStatus::Running)
        .filter_map(|t| t.task.pid)
        .collect()
}

#[tokio::test]
async fn a_killed_task_is_replaced_and_the_count_restored() {
    let (events, _) = broadcast::channel::<RuntimeEvent>(64);
    let launcher = ShellLauncher::new("exec sleep 600");
    let service = ServiceController::spawn(settings(2, None), launcher, None, events);
    let mut steady = service.steady();
    within("steady state", steady.wait_for(|s| *s))
        .await
        .unwrap();
    let before = service.status();
    assert_eq!(before.running_count, 2);
    assert_eq!(before.deployments[0].rollout_state, RolloutState::Completed);
    let victim = running_pids(&before)[0];

    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    eventually("a replacement and two running tasks", || {
        let status = service.status();
        let pids = running_pids(&status);
        pids.len() == 2 && !pids.contains(&victim)
    })
    .await;

    let status = service.status();
    let dead = status
        .tasks
        .iter()
        .find(|t| t.task.last_status == TaskStatus::Stopped)
        .expect("the killed task is listed as stopped");
    assert_eq!(dead.task.exit_code, Some(137));
    assert_eq!(
        dead.task.stop_code,
        Some(StopCode::EssentialContainerExited)
    );
    let started_events = status
        .events
        .iter()
        .filter(|e| {
            e.message
                .starts_with("(service backend) has started 1 tasks: (task ")
        })
        .count();
    assert_eq!(started_events, 1, "events: {:#?}", status.events);

    service.shutdown().await;
    let after = service.status();
    assert!(
        after
            .tasks
            .iter()
            .all(|t| t.task.last_status == TaskStatus::Stopped)
    );
}

#[tokio::test]
async fn scale_changes_the_number_of_tasks() {
    let (events, _) = broadcast::channel::<RuntimeEvent>(64);
    let launcher = ShellLauncher::new("exec sleep 600");
    let service = ServiceController::spawn(settings(1, None), launcher, None, events);
    eventually("one running task", || service.status().running_count == 1).await;
    service.scale(3);
    eventually("three running tasks", || {
        service.status().running_count == 3
    })
    .await;
    service.scale(1);
    eventually("one live task", || {
        let s = service.status();
        s.running_count == 1 && s.steady_state
    })
    .await;
    let status = service.status();
    let scaled_in = status
        .tasks
        .iter()
        .filter(|t| {
            t.task.stopped_reason.as_deref().is_some_and(|r| {
                r.starts_with("Scaling activity initiated by (deployment ecs-svc/")
            })
        })
        .count();
    assert_eq!(scaled_in, 2);
    service.shutdown().await;
}

#[tokio::test]
async fn an_unhealthy_target_is_replaced_before_it_is_stopped() {
    let (events, mut rx) = broadcast::channel::<RuntimeEvent>(256);
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = ServiceController::spawn(
        settings(2, Some(TG)),
        launcher,
        Some(router.clone()),
        events,
    );
    let mut steady = service.steady();
    within("steady state", steady.wait_for(|s| *s))
        .await
        .unwrap();

    let sick = service.status().tasks[0].clone();
    let sick_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, sick.task.port));
    router.set(sick_addr, TargetState::Unhealthy);

    eventually("the sick task to be stopped", || {
        service.status().tasks.iter().any(|t| {
            t.task.task_id == sick.task.task_id && t.task.last_status == TaskStatus::Stopped
        })
    })
    .await;
    eventually("steady again with two tasks", || {
        let s = service.status();
        s.steady_state && s.running_count == 2
    })
    .await;
    let stopped = service
        .status()
        .tasks
        .into_iter()
        .find(|t| t.task.task_id == sick.task.task_id)
        .unwrap();
    assert_eq!(
        stopped.task.stop_code,
        Some(StopCode::ServiceSchedulerInitiated)
    );
    assert_eq!(
        stopped.task.stopped_reason.as_deref(),
        Some(format!("Task failed ELB health checks in (target-group {TG})").as_str())
    );
    assert!(router.deregistered.lock().unwrap().contains(&sick_addr));
    // S2.6 stage 2 / S2.7: a task stopped for failing its health checks is a failed task (the
    // replacement became healthy before the stop, so the consecutive count stays at one).
    assert_eq!(service.status().deployments[0].failed_tasks, 1);

    // Start before stop: the replacement's start event comes before the sick task's stop.
    let mut messages = Vec::new();
    while let Ok(RuntimeEvent::Service { message, .. }) = rx.try_recv() {
        messages.push(message);
    }
    let unhealthy = messages
        .iter()
        .position(|m| {
            m.contains("is unhealthy in (target-group") && m.contains(sick.task.task_id.as_str())
        })
        .expect("an unhealthy event");
    let replacement_started = messages
        .iter()
        .skip(unhealthy)
        .position(|m| m.starts_with("(service backend) has started 1 tasks"))
        .map(|p| p + unhealthy)
        .expect("a replacement started");
    let sick_stopped = messages
        .iter()
        .position(|m| {
            m.starts_with("(service backend) has stopped 1 running tasks")
                && m.contains(sick.task.task_id.as_str())
        })
        .expect("the sick task stopped");
    assert!(replacement_started < sick_stopped, "events: {messages:#?}");
    assert!(messages.contains(&"(service backend) has reached a steady state.".to_owned()));
    service.shutdown().await;
}

#[tokio::test]
async fn tasks_that_keep_failing_are_throttled_and_reported() {
    let (events, _) = broadcast::channel::<RuntimeEvent>(64);
    let launcher = ShellLauncher::new("exit 1");
    let service = ServiceController::spawn(settings(1, None), launcher, None, events);
    eventually("the throttle event", || {
        service.status().events.iter().any(|e| {
            e.message == "(service backend) is unable to consistently start tasks successfully."
        })
    })
    .await;
    let status = service.status();
    assert!(status.deployments[0].failed_tasks >= 3);
    service.shutdown().await;
}

// ---- the controller reacts instead of polling ----------------------------------------------
//
// With the clock paused, tokio moves time forward only to fire a timer when nothing else can
// run. A controller that polls needs its timer to notice a change, so time moves before it
// acts; one that reacts to the change acts with the clock where it was.

/// Waits until `launcher` has launched `count` tasks; returns whether the clock moved.
async fn launched_without_a_timer(launcher: &ShellLauncher, count: u32, since: Instant) -> bool {
    let mut launched = launcher.launched.subscribe();
    launched.wait_for(|n| *n >= count).await.unwrap();
    since.elapsed() == Duration::ZERO
}

#[tokio::test(start_paused = true)]
async fn a_task_exit_is_acted_upon_at_once() {
    let (events, _) = broadcast::channel::<RuntimeEvent>(64);
    let launcher = ShellLauncher::new("exec sleep 600");
    let service = ServiceController::spawn(settings(1, None), launcher.clone(), None, events);
    service.steady().wait_for(|s| *s).await.unwrap();
    // Past the first second, the exit is a crash of a task that ran, not a failed start
    // (which the back-off would rightly hold).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = running_pids(&service.status())[0];

    let before = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    assert!(
        launched_without_a_timer(&launcher, 2, before).await,
        "the replacement waited for a timer"
    );
    service.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_target_is_acted_upon_at_once() {
    let (events, _) = broadcast::channel::<RuntimeEvent>(64);
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = ServiceController::spawn(
        settings(1, Some(TG)),
        launcher.clone(),
        Some(router.clone()),
        events,
    );
    service.steady().wait_for(|s| *s).await.unwrap();
    let sick = service.status().tasks[0].task.port;

    let before = Instant::now();
    router.set(
        SocketAddr::from((Ipv4Addr::LOCALHOST, sick)),
        TargetState::Unhealthy,
    );
    assert!(
        launched_without_a_timer(&launcher, 2, before).await,
        "the replacement waited for a timer"
    );
    assert!(
        service
            .status()
            .events
            .iter()
            .any(|e| e.message.contains("is unhealthy in (target-group")),
        "the task was marked unhealthy"
    );
    service.shutdown().await;
}
