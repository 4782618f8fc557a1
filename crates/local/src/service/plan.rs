//! The service scheduler's decisions, as a pure function of what it observes.
//!
//! `plan(view) -> Vec<Action>` keeps `desiredCount` (S1.1): it starts tasks that are missing,
//! marks tasks unhealthy once past the grace period (S1.12), starts replacements for them
//! before stopping them within `maximumPercent` (S1.14), stops them one by one when no
//! replacement can start (S1.15; they do not count toward `minimumHealthyPercent`), scales
//! in, and reports the steady state. During a rolling update it starts tasks of the new
//! revision within `maximumPercent` and stops the earlier revision's within
//! `minimumHealthyPercent` (S1.2–S1.7), and fails the deployment when the circuit breaker's
//! count reaches its threshold (S2.6). It owns no clock and no process: the executor feeds
//! it and carries it out.

use std::time::Duration;

use serde::Serialize;

use super::state::{DeploymentConfiguration, TargetHealthView, TargetState, UnhealthyCause};
use crate::task::{DesiredStatus, HealthStatus, StopCode, TaskId, TaskStatus, reasons};

/// What the planner sees of a service.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    pub desired_count: u32,
    pub configuration: DeploymentConfiguration,
    pub grace_period: Duration,
    /// The target group the service's tasks register in, if it is load balanced.
    pub target_group: Option<String>,
    /// The PRIMARY deployment: new tasks belong to it.
    pub primary_deployment: String,
    /// Every task not yet STOPPED.
    pub tasks: Vec<TaskView>,
    /// The start back-off (S1.18) is running: no task may start now.
    pub throttled: bool,
    /// The PRIMARY deployment is FAILED (the circuit breaker, no rollback): it launches no
    /// new tasks (S2.9).
    pub primary_failed: bool,
    /// The circuit breaker watching the PRIMARY deployment, when it does (S2.1–S2.6).
    pub breaker: Option<BreakerView>,
    /// A traffic-shifting deployment (blue/green, canary, linear) is under way: the earlier
    /// revision's tasks are blue and stay until clean-up (S3.8), whatever the rolling bounds.
    pub shifting: Option<ShiftingView>,
}

/// What the planner sees of a traffic-shifting deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftingView {
    /// The stage has reached `SCALE_UP`: green scales to the desired count beside blue
    /// (S3.10); before it, green has no task.
    pub green_may_start: bool,
}

/// The circuit breaker's count for the PRIMARY deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerView {
    /// Its `failedTasks` (S2.7).
    pub failed_tasks: u32,
    /// The count at which it fails (S2.3).
    pub threshold: u32,
}

/// What the planner sees of a task.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: TaskId,
    /// It runs the PRIMARY deployment's revision (a task of an earlier revision is replaced
    /// by a rolling update; a rollback adopts the tasks of the revision it returns to).
    pub current: bool,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    /// Time since the task started (the grace period counts from here).
    pub age: Duration,
    /// Whether the task has a container health check, and its status.
    pub container_check: Option<HealthStatus>,
    /// Its target's health, when registered.
    pub target: Option<TargetHealthView>,
    /// Set once the scheduler has decided the task is unhealthy.
    pub unhealthy: Option<UnhealthyCause>,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start `count` tasks of `deployment`.
    StartTasks { deployment: String, count: u32 },
    /// Record that a task failed its health checks (once; the task is then replaced).
    MarkUnhealthy { task: TaskId, cause: UnhealthyCause },
    /// Deregister, drain and stop a task.
    StopTask {
        task: TaskId,
        code: StopCode,
        reason: String,
    },
    /// Tasks are missing, but the start back-off holds them.
    Throttled,
    /// Neither a start nor a stop is allowed by min/max during a deployment (S1.7).
    Stuck,
    /// The circuit breaker tripped: the PRIMARY deployment is FAILED (S2.6, S2.9).
    FailDeployment { deployment: String },
    /// `desiredCount` healthy tasks and nothing else: the service is stable.
    SteadyState,
}

/// Whether a live task counts as healthy (S1.10–S1.11): its target is healthy (when load
/// balanced) and its container check passes (when it has one).
fn is_healthy(task: &TaskView, load_balanced: bool) -> bool {
    if task.last_status != TaskStatus::Running {
        return false;
    }
    let target_ok = !load_balanced
        || task
            .target
            .as_ref()
            .is_some_and(|t| t.state == TargetState::Healthy);
    let container_ok = task
        .container_check
        .is_none_or(|status| status == HealthStatus::Healthy);
    target_ok && container_ok
}

/// Why a running task should now be marked unhealthy, if it should.
fn unhealthy_cause(task: &TaskView, view: &ServiceView) -> Option<UnhealthyCause> {
    if task.last_status != TaskStatus::Running || task.age < view.grace_period {
        return None;
    }
    if task.container_check == Some(HealthStatus::Unhealthy) {
        return Some(UnhealthyCause::ContainerHealthCheck);
    }
    let target_group = view.target_group.as_ref()?;
    let target = task.target.as_ref()?;
    (target.state == TargetState::Unhealthy).then(|| UnhealthyCause::TargetGroup {
        target_group: target_group.clone(),
        port: target.target.port(),
        description: target
            .description
            .clone()
            .unwrap_or_else(|| "Health checks failed".to_owned()),
    })
}

fn stop_reason(cause: &UnhealthyCause) -> String {
    match cause {
        UnhealthyCause::TargetGroup { target_group, .. } => {
            reasons::failed_elb_health_checks(target_group)
        }
        UnhealthyCause::ContainerHealthCheck => reasons::FAILED_CONTAINER_HEALTH_CHECKS.to_owned(),
    }
}

pub fn plan(view: &ServiceView) -> Vec<Action> {
    let mut actions = Vec::new();
    let load_balanced = view.target_group.is_some();
    let desired = view.desired_count;

    // Live tasks: the ones the scheduler still wants. Tasks already being stopped do not
    // count toward maximumPercent (S1.6, RUNNING + PENDING).
    let live: Vec<&TaskView> = view
        .tasks
        .iter()
        .filter(|t| t.desired_status == DesiredStatus::Running && !t.last_status.is_stopped())
        .collect();
    let stopping = view.tasks.len() - live.len();

    let mut unhealthy: Vec<(&TaskView, UnhealthyCause)> = Vec::new();
    for task in &live {
        if let Some(cause) = &task.unhealthy {
            unhealthy.push((task, cause.clone()));
        } else if let Some(cause) = unhealthy_cause(task, view) {
            actions.push(Action::MarkUnhealthy {
                task: task.id.clone(),
                cause: cause.clone(),
            });
            unhealthy.push((task, cause));
        }
    }

    // The circuit breaker (S2.6): the deployment fails once its failed tasks reach the
    // threshold; the executor then rolls back or stops launching (S2.9, S2.11, S2.13).
    if let Some(breaker) = &view.breaker
        && breaker.failed_tasks >= breaker.threshold
    {
        actions.push(Action::FailDeployment {
            deployment: view.primary_deployment.clone(),
        });
        return actions;
    }

    let is_unhealthy = |t: &TaskView| unhealthy.iter().any(|(u, _)| u.id == t.id);
    let healthy_count = live
        .iter()
        .filter(|t| !is_unhealthy(t) && is_healthy(t, load_balanced))
        .count() as u32;
    // Tasks of the revision being deployed that are not unhealthy: healthy ones and ones
    // still coming up. The others (an earlier revision) are retired as the rollout goes.
    let mut candidates: Vec<&TaskView> = live
        .iter()
        .copied()
        .filter(|t| t.current && !is_unhealthy(t))
        .collect();
    let mut old: Vec<&TaskView> = live
        .iter()
        .copied()
        .filter(|t| !t.current && !is_unhealthy(t))
        .collect();

    let live_count = live.len() as u32;
    let max_tasks = view.configuration.max_tasks(desired);
    let min_healthy = view.configuration.min_healthy(desired);
    // A FAILED deployment launches no new tasks (S2.9, S2.13).
    let missing = if view.primary_failed || view.shifting.is_some_and(|s| !s.green_may_start) {
        0
    } else {
        desired.saturating_sub(candidates.len() as u32)
    };
    // Green scales to 100% beside blue (S3.10 `SCALE_UP`): blue takes no room.
    let room = match view.shifting {
        Some(_) => desired.saturating_sub(candidates.len() as u32),
        None => max_tasks.saturating_sub(live_count),
    };
    let to_start = missing.min(room);

    if to_start > 0 {
        if view.throttled {
            actions.push(Action::Throttled);
        } else {
            actions.push(Action::StartTasks {
                deployment: view.primary_deployment.clone(),
                count: to_start,
            });
        }
    }

    // Unhealthy tasks: stopped once their replacements are healthy (S1.14); when no
    // replacement can start, one at a time to free room for one (S1.15). An unhealthy task
    // does not count toward minimumHealthyPercent, so stopping it never breaks that bound:
    // ECS keeps replacing unhealthy tasks whatever their replacements did, and a service
    // whose every task (replacements included) went unhealthy recovers with its app.
    let stop_unhealthy = |task: &TaskView, cause: &UnhealthyCause| Action::StopTask {
        task: task.id.clone(),
        code: StopCode::ServiceSchedulerInitiated,
        reason: stop_reason(cause),
    };
    let mut stopped_any = false;
    if !unhealthy.is_empty() {
        if healthy_count >= desired {
            for (task, cause) in &unhealthy {
                actions.push(stop_unhealthy(task, cause));
            }
            stopped_any = true;
        } else if room == 0 && missing > 0 && stopping == 0 {
            let (task, cause) = &unhealthy[0];
            actions.push(stop_unhealthy(task, cause));
            stopped_any = true;
        }
    }

    // Rolling update (S1.2–S1.5): tasks of an earlier revision are stopped as long as the
    // healthy count stays at or above minimumHealthyPercent; the ones not healthy (yet)
    // first, as they count for nothing. A FAILED deployment without a rollback leaves them
    // running (S2.13).
    if !view.primary_failed && view.shifting.is_none() && !old.is_empty() {
        old.sort_by_key(|t| (is_healthy(t, load_balanced), t.age));
        let mut spare = healthy_count.saturating_sub(min_healthy);
        for task in old {
            let healthy = is_healthy(task, load_balanced);
            if healthy {
                if spare == 0 {
                    break;
                }
                spare -= 1;
            }
            actions.push(Action::StopTask {
                task: task.id.clone(),
                code: StopCode::ServiceSchedulerInitiated,
                reason: reasons::scaling_activity(&view.primary_deployment),
            });
            stopped_any = true;
        }
    }
    let old_left = live.iter().any(|t| !t.current);

    // Scale in: more tasks of this revision than desired. Tasks not yet healthy go first,
    // then the newest.
    let excess = (candidates.len() as u32).saturating_sub(desired);
    if excess > 0 {
        candidates.sort_by_key(|t| (is_healthy(t, load_balanced), t.age));
        for task in candidates.iter().take(excess as usize) {
            actions.push(Action::StopTask {
                task: task.id.clone(),
                code: StopCode::ServiceSchedulerInitiated,
                reason: reasons::scaling_activity(&view.primary_deployment),
            });
        }
        stopped_any = true;
    }

    let everything_healthy = live
        .iter()
        .all(|t| !is_unhealthy(t) && is_healthy(t, load_balanced));
    // S1.7: an earlier revision is left, every task is healthy (nothing will change by
    // itself), and the bounds allow neither a start nor a stop.
    if old_left
        && !view.primary_failed
        && view.shifting.is_none()
        && to_start == 0
        && !stopped_any
        && stopping == 0
        && everything_healthy
    {
        actions.push(Action::Stuck);
    }
    let steady = !stopped_any
        && !old_left
        && to_start == 0
        && unhealthy.is_empty()
        && stopping == 0
        && live_count == desired
        && healthy_count == desired;
    if steady {
        actions.push(Action::SteadyState);
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_as_ecs_documents() {
        let c = |min, max| DeploymentConfiguration {
            minimum_healthy_percent: min,
            maximum_percent: max,
        };
        assert_eq!(c(50, 200).min_healthy(4), 2);
        assert_eq!(c(75, 200).min_healthy(2), 2);
        assert_eq!(c(100, 200).max_tasks(4), 8);
        assert_eq!(c(100, 125).max_tasks(3), 3);
    }
}
