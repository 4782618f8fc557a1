//! The service scheduler: the pure planner (table tests) and the controller with real
//! processes (replacement after kill -9, unhealthy-target replacement start-before-stop, both
//! acted upon as they happen rather than at a polling tick).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_local::service::{
    Action, BoxFuture, BoxStream, BreakerView, CircuitBreaker, Deployment, DeploymentConfiguration,
    DeploymentStatus, Revision, RolloutState, RuleWeight, ServiceController, ServiceHandle,
    ServiceNotice, ServiceSettings, ServiceView, ShiftingView, TargetHealthView, TargetRouter,
    TargetState, TaskLauncher, TaskView, UnhealthyCause, plan,
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
        current: true,
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
        primary_failed: false,
        breaker: None,
        shifting: None,
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

/// A task of the revision before the one being deployed.
fn old_task(n: u16, state: TargetState) -> TaskView {
    TaskView {
        current: false,
        ..running(n, state)
    }
}

fn scale_stop(n: u16) -> Action {
    Action::StopTask {
        task: id(n),
        code: StopCode::ServiceSchedulerInitiated,
        reason: format!("Scaling activity initiated by (deployment {DEPLOYMENT})"),
    }
}

fn bounds(min: u32, max: u32) -> DeploymentConfiguration {
    DeploymentConfiguration {
        minimum_healthy_percent: min,
        maximum_percent: max,
    }
}

/// The rolling update and the circuit breaker, desired 2 (S1.2–S1.7, S2.6–S2.13).
/// The scheduler's side of blue/green, canary and linear (S3.8, S3.10): blue's tasks stay
/// whatever the rolling bounds until clean-up; green starts only once the stage reaches
/// `SCALE_UP`, and then all at once beside blue; green's crashes are replaced; the service
/// is not steady while blue runs.
#[test]
fn shifting_planner_tables() {
    use TargetState::{Healthy, Initial};
    let shifting = |green_may_start, tasks| ServiceView {
        shifting: Some(ShiftingView { green_may_start }),
        // Tight rolling bounds that a shift ignores: blue takes no room.
        configuration: bounds(100, 100),
        ..view(2, tasks)
    };
    let blue = || vec![old_task(1, Healthy), old_task(2, Healthy)];
    let cases: Vec<(&str, ServiceView, Vec<Action>)> = vec![
        (
            "S3.10 PRE_SCALE_UP: green has no task yet, blue stays",
            shifting(false, blue()),
            vec![],
        ),
        (
            "S3.10 SCALE_UP: green scales to 100% beside blue, beyond maximum_percent",
            shifting(true, blue()),
            vec![start(2)],
        ),
        (
            "S3.8 green healthy: blue is kept for the traffic shift and bake (not steady)",
            shifting(
                true,
                [blue(), vec![running(3, Healthy), running(4, Healthy)]].concat(),
            ),
            vec![],
        ),
        (
            "green coming up: nothing to do",
            shifting(
                true,
                [blue(), vec![running(3, Healthy), running(4, Initial)]].concat(),
            ),
            vec![],
        ),
        (
            "a green task crashed: replaced, blue untouched",
            shifting(true, [blue(), vec![running(3, Healthy)]].concat()),
            vec![start(1)],
        ),
        (
            "S3.8 step 6, clean-up: with the shift over, blue is retired at once",
            view(
                2,
                [blue(), vec![running(3, Healthy), running(4, Healthy)]].concat(),
            ),
            vec![scale_stop(1), scale_stop(2)],
        ),
    ];
    for (name, view, expected) in cases {
        assert_eq!(plan(&view), expected, "{name}");
    }
}

#[test]
fn rolling_planner_tables() {
    use TargetState::{Healthy, Initial, Unhealthy};
    let stopping = |n| TaskView {
        desired_status: DesiredStatus::Stopped,
        last_status: TaskStatus::Deactivating,
        ..old_task(n, Healthy)
    };
    let cases: Vec<(&str, ServiceView, Vec<Action>)> = vec![
        (
            "S1.4/S1.5 100/200: the new revision's tasks start first, up to max",
            view(2, vec![old_task(1, Healthy), old_task(2, Healthy)]),
            vec![start(2)],
        ),
        (
            "S1.2 new tasks coming up: the old ones stay (min healthy is 2)",
            view(
                2,
                vec![
                    old_task(1, Healthy),
                    old_task(2, Healthy),
                    running(3, Initial),
                    running(4, Initial),
                ],
            ),
            vec![],
        ),
        (
            "S1.2 new tasks healthy: the old ones are stopped",
            view(
                2,
                vec![
                    old_task(1, Healthy),
                    old_task(2, Healthy),
                    running(3, Healthy),
                    running(4, Healthy),
                ],
            ),
            vec![scale_stop(1), scale_stop(2)],
        ),
        (
            "S1.2 one new task healthy: one old task goes",
            view(
                2,
                vec![
                    old_task(1, Healthy),
                    old_task(2, Healthy),
                    running(3, Healthy),
                    running(4, Initial),
                ],
            ),
            vec![scale_stop(1)],
        ),
        (
            "S1.2 an old task that is not healthy goes first, whatever the minimum",
            view(
                2,
                vec![
                    old_task(1, Initial),
                    old_task(2, Healthy),
                    running(3, Healthy),
                    running(4, Initial),
                ],
            ),
            vec![scale_stop(1)],
        ),
        (
            "S1.3 50/100: min healthy rounds up to 1, so one old task stops first",
            ServiceView {
                configuration: bounds(50, 100),
                ..view(2, vec![old_task(1, Healthy), old_task(2, Healthy)])
            },
            vec![scale_stop(1)],
        ),
        (
            "S1.6 50/100: the stopping task does not count toward max, one new task starts",
            ServiceView {
                configuration: bounds(50, 100),
                ..view(2, vec![stopping(1), old_task(2, Healthy)])
            },
            vec![start(1)],
        ),
        (
            "S1.5 desired 3 at 125%: floor(3.75) = 3, no room; 75% keeps 3 healthy: stuck",
            ServiceView {
                configuration: bounds(75, 125),
                ..view(
                    3,
                    vec![
                        old_task(1, Healthy),
                        old_task(2, Healthy),
                        old_task(3, Healthy),
                    ],
                )
            },
            vec![Action::Stuck],
        ),
        (
            "S1.7 100/100: neither a start nor a stop is allowed",
            ServiceView {
                configuration: bounds(100, 100),
                ..view(2, vec![old_task(1, Healthy), old_task(2, Healthy)])
            },
            vec![Action::Stuck],
        ),
        (
            "S2.6 the breaker's count below its threshold: keep going",
            ServiceView {
                breaker: Some(BreakerView {
                    failed_tasks: 2,
                    threshold: 3,
                }),
                ..view(2, vec![old_task(1, Healthy), old_task(2, Healthy)])
            },
            vec![start(2)],
        ),
        (
            "S2.6 the count equals the threshold: the deployment fails",
            ServiceView {
                breaker: Some(BreakerView {
                    failed_tasks: 3,
                    threshold: 3,
                }),
                ..view(2, vec![old_task(1, Healthy), old_task(2, Healthy)])
            },
            vec![Action::FailDeployment {
                deployment: DEPLOYMENT.to_owned(),
            }],
        ),
        (
            "S2.9/S2.13 FAILED without rollback: nothing starts, the old tasks keep running",
            ServiceView {
                primary_failed: true,
                ..view(2, vec![old_task(1, Healthy), old_task(2, Healthy)])
            },
            vec![],
        ),
        (
            "S2.11 a rollback adopts the tasks of its revision and stops the failed release's",
            view(
                2,
                vec![
                    running(1, Healthy),
                    running(2, Healthy),
                    TaskView {
                        unhealthy: Some(elb_cause(3)),
                        ..old_task(3, Unhealthy)
                    },
                    old_task(4, Initial),
                ],
            ),
            vec![elb_stop(3), scale_stop(4)],
        ),
    ];
    for (name, view, expected) in cases {
        assert_eq!(plan(&view), expected, "case: {name}");
    }
}

#[test]
fn breaker_threshold_as_ecs_documents() {
    // S2.3: min(200, max(3, ceil(0.5 × desired))).
    for (desired, threshold) in [
        (1, 3),
        (2, 3),
        (6, 3),
        (7, 4),
        (25, 13),
        (400, 200),
        (800, 200),
    ] {
        assert_eq!(
            CircuitBreaker::threshold(desired),
            threshold,
            "desired {desired}"
        );
    }
}

// ---- controller with real processes --------------------------------------------------------

/// Launches `sh` tasks running `script` (or the script of their revision); counts the
/// launches.
struct ShellLauncher {
    script: String,
    revisions: Mutex<HashMap<String, String>>,
    launched: watch::Sender<u32>,
}

impl ShellLauncher {
    fn new(script: &str) -> Arc<Self> {
        Arc::new(Self {
            script: script.to_owned(),
            revisions: Mutex::default(),
            launched: watch::Sender::new(0),
        })
    }

    /// Tasks of `task_definition` run `script`.
    fn revision(&self, task_definition: &str, script: &str) {
        self.revisions
            .lock()
            .unwrap()
            .insert(task_definition.to_owned(), script.to_owned());
    }
}

impl TaskLauncher for ShellLauncher {
    fn launch<'a>(
        &'a self,
        _service: &'a str,
        task_definition: &'a str,
        id: TaskId,
    ) -> BoxFuture<'a, Task> {
        Box::pin(async move {
            let script = self.revisions.lock().unwrap().get(task_definition).cloned();
            let mut spec: TaskSpec = shell_task(script.as_deref().unwrap_or(&self.script));
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
    /// The state new targets get (healthy unless set).
    register_as: Mutex<Option<TargetState>>,
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
        let state = self
            .register_as
            .lock()
            .unwrap()
            .unwrap_or(TargetState::Healthy);
        self.set(target, state);
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

fn settings(desired: u32, target_group: Option<&str>) -> ServiceSettings {
    ServiceSettings {
        name: "backend".to_owned(),
        desired_count: desired,
        configuration: DeploymentConfiguration::default(),
        grace_period: Duration::ZERO,
        target_group: target_group.map(str::to_owned),
        task_definition: "backend:1".to_owned(),
        image: "backend@sha256:test".to_owned(),
        circuit_breaker: CircuitBreaker {
            enable: true,
            rollback: true,
        },
        traffic: None,
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
    let (events, _) = broadcast::channel::<ServiceNotice>(64);
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
    let (events, _) = broadcast::channel::<ServiceNotice>(64);
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
    let (events, mut rx) = broadcast::channel::<ServiceNotice>(256);
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
    while let Ok(ServiceNotice { message, .. }) = rx.try_recv() {
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
    let (events, _) = broadcast::channel::<ServiceNotice>(64);
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
    let (events, _) = broadcast::channel::<ServiceNotice>(64);
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
    let (events, _) = broadcast::channel::<ServiceNotice>(64);
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

// ---- releases: rolling update, circuit breaker, rollback -----------------------------------

fn revision(n: u32) -> Revision {
    Revision {
        task_definition: format!("backend:{n}"),
        image: format!("backend@sha256:{n}"),
    }
}

/// Waits until `condition` holds for the service, re-checking on each of its changes.
async fn until(service: &ServiceHandle, what: &str, condition: impl Fn(&ServiceHandle) -> bool) {
    let mut changes = service.changes();
    within(what, async {
        while !condition(service) {
            changes.changed().await.expect("the controller ended");
        }
    })
    .await;
}

fn deployment(service: &ServiceHandle, id: &str) -> Deployment {
    service
        .deployments()
        .into_iter()
        .find(|d| d.id == id)
        .expect("the deployment is kept")
}

/// Live tasks as (pid, revision).
fn live_tasks(service: &ServiceHandle) -> Vec<(u32, String)> {
    service
        .status()
        .tasks
        .into_iter()
        .filter(|t| t.task.last_status == TaskStatus::Running)
        .filter_map(|t| Some((t.task.pid?, t.task_definition)))
        .collect()
}

fn messages(service: &ServiceHandle) -> Vec<String> {
    // Newest first in status; oldest first here.
    let mut m: Vec<String> = service
        .status()
        .events
        .into_iter()
        .map(|e| e.message)
        .collect();
    m.reverse();
    m
}

async fn steady_service(launcher: Arc<ShellLauncher>, router: Arc<FakeRouter>) -> ServiceHandle {
    let (events, _) = broadcast::channel::<ServiceNotice>(256);
    let service = ServiceController::spawn(settings(2, Some(TG)), launcher, Some(router), events);
    let mut steady = service.steady();
    within("steady state", steady.wait_for(|s| *s))
        .await
        .unwrap();
    service
}

/// S1.2–S1.5, S1.28, S2.9, S2.14: every task is replaced by the new revision, started before
/// the old ones stop (100/200), and the deployment completes; the old one leaves
/// `deployments` but stays in the history.
#[tokio::test]
async fn a_rolling_deploy_replaces_every_task_and_completes() {
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = steady_service(launcher.clone(), router.clone()).await;
    let first = service.status().deployments[0].id.clone();
    let old_pids: Vec<u32> = live_tasks(&service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();

    let id = service.deploy(revision(2)).await.unwrap();
    until(&service, "the deployment to complete", |s| {
        deployment(s, &id).rollout_state == RolloutState::Completed
    })
    .await;

    let live = live_tasks(&service);
    assert_eq!(live.len(), 2);
    assert!(
        live.iter()
            .all(|(pid, rev)| rev == "backend:2" && !old_pids.contains(pid))
    );
    let status = service.status();
    assert_eq!(status.deployments.len(), 1, "{:#?}", status.deployments);
    assert_eq!(status.deployments[0].id, id);
    assert_eq!(status.deployments[0].status, DeploymentStatus::Primary);
    assert_eq!(
        deployment(&service, &first).status,
        DeploymentStatus::Inactive
    );
    assert_eq!(
        deployment(&service, &id).rollout_state_reason,
        format!("ECS deployment {id} completed.")
    );
    let m = messages(&service);
    let started = m
        .iter()
        .rposition(|m| m.starts_with("(service backend) has started 2 tasks"))
        .expect("the new tasks started");
    let first_stop = m
        .iter()
        .position(|m| m.starts_with("(service backend) has stopped"))
        .expect("the old tasks stopped");
    assert!(started < first_stop, "start before stop at 100/200: {m:#?}");
    assert!(m.contains(&format!(
        "(service backend) (deployment {id}) deployment completed."
    )));
    service.shutdown().await;
}

/// Checks a release the circuit breaker stopped and rolled back (S2.6, S2.9–S2.12): FAILED
/// with ECS's reason, a rollback deployment of the first revision COMPLETED, and the first
/// revision's tasks never stopped.
async fn assert_rolled_back(service: &ServiceHandle, failed: &str, first: &str, old_pids: &[u32]) {
    until(service, "the rollback to complete", |s| {
        let primary = &s.status().deployments[0];
        primary.id != failed && primary.rollout_state == RolloutState::Completed
    })
    .await;
    let failed_deployment = deployment(service, failed);
    assert_eq!(failed_deployment.rollout_state, RolloutState::Failed);
    assert_eq!(
        failed_deployment.rollout_state_reason,
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert!(failed_deployment.failed_tasks >= CircuitBreaker::threshold(2));
    let rollback = service.status().deployments[0].clone();
    assert!(rollback.rollback);
    assert_eq!(rollback.task_definition, "backend:1");
    // It adopted the first revision's tasks: they are counted as its own.
    assert_eq!(rollback.running_count, 2);
    assert!(
        service
            .status()
            .tasks
            .iter()
            .filter(|t| t.task.last_status == TaskStatus::Running)
            .all(|t| t.deployment_id == rollback.id)
    );
    assert_eq!(
        rollback.rollout_state_reason,
        format!("ECS deployment {} completed.", rollback.id)
    );
    let mut live: Vec<u32> = live_tasks(service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    live.sort_unstable();
    let mut old = old_pids.to_vec();
    old.sort_unstable();
    assert_eq!(live, old, "the first revision's tasks kept serving");
    let m = messages(service);
    let failed_at = m
        .iter()
        .position(|m| {
            *m == format!(
                "(service backend) (deployment {failed}) deployment failed: tasks failed to start."
            )
        })
        .expect("a deployment failed event");
    assert_eq!(
        m[failed_at + 1],
        format!("(service backend) rolling back to deployment {first}.")
    );
}

#[tokio::test]
async fn a_release_whose_tasks_exit_at_start_is_rolled_back_by_the_circuit_breaker() {
    let launcher = ShellLauncher::new("exec sleep 600");
    launcher.revision("backend:2", "exit 1");
    let router = Arc::new(FakeRouter::default());
    let service = steady_service(launcher.clone(), router.clone()).await;
    let first = service.status().deployments[0].id.clone();
    let old_pids: Vec<u32> = live_tasks(&service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();

    // As the balancer does: a new target is `initial` until its checks pass, which these
    // tasks never live long enough for.
    *router.register_as.lock().unwrap() = Some(TargetState::Initial);

    let failed = service.deploy(revision(2)).await.unwrap();
    assert_rolled_back(&service, &failed, &first, &old_pids).await;
    service.shutdown().await;
}

#[tokio::test]
async fn a_release_whose_health_checks_fail_is_rolled_back_by_the_circuit_breaker() {
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = steady_service(launcher.clone(), router.clone()).await;
    let first = service.status().deployments[0].id.clone();
    let old_pids: Vec<u32> = live_tasks(&service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();

    // Every target registered from now on fails its health checks (a wrong path, say).
    *router.register_as.lock().unwrap() = Some(TargetState::Unhealthy);
    let failed = service.deploy(revision(2)).await.unwrap();
    assert_rolled_back(&service, &failed, &first, &old_pids).await;
    let stopped_for_health = service
        .status()
        .tasks
        .iter()
        .filter(|t| {
            t.task_definition == "backend:2"
                && t.task.stopped_reason.as_deref()
                    == Some(
                        format!("Task failed ELB health checks in (target-group {TG})").as_str(),
                    )
        })
        .count() as u32;
    assert!(stopped_for_health >= CircuitBreaker::threshold(2));
    service.shutdown().await;
}

/// `berth rollback` on a settled service deploys the last release before the running one;
/// with none, it says so.
#[tokio::test]
async fn rollback_of_a_settled_service_returns_to_the_previous_release() {
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = steady_service(launcher.clone(), router.clone()).await;
    let error = service.rollback().await.unwrap_err();
    assert_eq!(
        error,
        "service backend has no earlier completed deployment of another revision to roll back to"
    );

    let second = service.deploy(revision(2)).await.unwrap();
    until(&service, "the release to complete", |s| {
        deployment(s, &second).rollout_state == RolloutState::Completed
    })
    .await;
    let back = service.rollback().await.unwrap();
    until(&service, "the rollback to complete", |s| {
        deployment(s, &back).rollout_state == RolloutState::Completed
    })
    .await;
    let live = live_tasks(&service);
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|(_, rev)| rev == "backend:1"), "{live:?}");
    assert!(deployment(&service, &back).rollback);
    // The release it left is COMPLETED, not FAILED: a settled rollback fails nothing.
    assert_eq!(
        deployment(&service, &second).rollout_state,
        RolloutState::Completed
    );
    service.shutdown().await;
}

/// StopServiceDeployment with ROLLBACK (S2.15): a deployment still in progress is FAILED and
/// the last COMPLETED one deployed again; its tasks, never stopped, are adopted.
#[tokio::test]
async fn rollback_during_a_deployment_stops_it_and_returns_to_the_last_completed() {
    let launcher = ShellLauncher::new("exec sleep 600");
    let router = Arc::new(FakeRouter::default());
    let service = steady_service(launcher.clone(), router.clone()).await;
    let old_pids: Vec<u32> = live_tasks(&service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();

    // The new tasks never pass their health checks' healthy threshold.
    *router.register_as.lock().unwrap() = Some(TargetState::Initial);
    let stuck = service.deploy(revision(2)).await.unwrap();
    until(&service, "the new tasks to run", |s| {
        live_tasks(s)
            .iter()
            .filter(|(_, rev)| rev == "backend:2")
            .count()
            == 2
    })
    .await;
    let back = service.rollback().await.unwrap();
    until(&service, "the rollback to complete", |s| {
        deployment(s, &back).rollout_state == RolloutState::Completed
    })
    .await;
    assert_eq!(
        deployment(&service, &stuck).rollout_state,
        RolloutState::Failed
    );
    let mut live: Vec<u32> = live_tasks(&service)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    live.sort_unstable();
    let mut old = old_pids.clone();
    old.sort_unstable();
    assert_eq!(live, old);
    service.shutdown().await;
}
