//! When `berth up` stops waiting for a service that cannot start.
//!
//! A service whose first deployment loses as many tasks in a row as the deployment circuit
//! breaker's threshold (S2.3) has nothing COMPLETED to roll back to, and ECS stalls such a
//! deployment (S2.11): it launches no more tasks. `berth up` does the same from the user's
//! side: it stops the stack and says which service failed and why, instead of waiting for a
//! health that never comes (an image that does not exist, a port the app never opens).

use berth_local::control::StatusReport;
use berth_local::service::{CircuitBreaker, ServiceStatus};
use berth_local::task::TaskStatus;
use berth_spec::Stack;

/// The first service that cannot start, as a message that says what to do next (naming it
/// by its key in `stack`, which `berth logs` takes); `None` while every service is steady or
/// may still become so.
pub fn stalled_service(stack: &Stack, status: &StatusReport) -> Option<String> {
    status.services.iter().find_map(|service| {
        let key = stack
            .services
            .iter()
            .find(|s| s.service_name == service.service_name)
            .map_or(service.service_name.as_str(), |s| s.name.as_str());
        stalled(key, service)
    })
}

fn stalled(name: &str, service: &ServiceStatus) -> Option<String> {
    let primary = service.deployments.first()?;
    let threshold = CircuitBreaker::threshold(service.desired_count);
    if service.steady_state || service.desired_count == 0 || primary.failed_tasks < threshold {
        return None;
    }
    let last = service
        .tasks
        .iter()
        .filter(|t| t.task.last_status == TaskStatus::Stopped)
        .max_by_key(|t| t.task.stopped_at)
        .and_then(|t| t.task.stopped_reason.as_deref())
        .unwrap_or("no reason recorded");
    Some(format!(
        "service {name} cannot start: {failed} of its tasks failed in a row (the deployment \
         circuit breaker's threshold for {desired} tasks); the last one stopped because: \
         {last}\nberth stopped the stack. Fix the service, then run `berth up` again \
         (`berth logs {name}` shows what its tasks printed).",
        failed = primary.failed_tasks,
        desired = service.desired_count,
    ))
}

#[cfg(test)]
mod tests {
    use berth_local::control::StatusReport;
    use berth_local::service::{
        Deployment, DeploymentConfiguration, ServiceStatus, ServiceTaskStatus,
    };
    use berth_local::task::{StopCode, TaskId, TaskSnapshot};
    use chrono::{Duration, Utc};

    use super::*;

    fn stopped(reason: &str, seconds_ago: i64) -> ServiceTaskStatus {
        let mut task = TaskSnapshot::provisioning(TaskId::random(), 0);
        task.finish(StopCode::TaskFailedToStart, reason.to_owned(), None);
        task.stopped_at = Some(Utc::now() - Duration::seconds(seconds_ago));
        ServiceTaskStatus {
            task,
            deployment_id: "ecs-svc/1".into(),
            task_definition: "api:1".into(),
            target_health: None,
        }
    }

    fn report(desired: u32, failed: u32, steady: bool) -> StatusReport {
        let mut deployment = Deployment::new_primary("api:1".into(), "img".into(), desired);
        deployment.failed_tasks = failed;
        let service = ServiceStatus {
            service_name: "api-svc".into(),
            desired_count: desired,
            running_count: 0,
            pending_count: 0,
            target_group: None,
            health_check_grace_period_seconds: 0,
            deployment_configuration: DeploymentConfiguration::default(),
            steady_state: steady,
            deployments: vec![deployment],
            tasks: vec![
                stopped("older", 30),
                stopped("CannotPullContainerError: pull image x: gone", 1),
            ],
            events: Vec::new(),
            autoscaling: None,
        };
        StatusReport {
            stack: "demo".into(),
            environment: "local".into(),
            url: "http://127.0.0.1:1".into(),
            pid: 1,
            started_at: Utc::now(),
            services: vec![service],
            target_groups: Vec::new(),
            database: None,
            local_differences: Vec::new(),
        }
    }

    fn stack() -> Stack {
        berth_spec::parse(
            "[stack]\nname = \"demo\"\n[services.api]\nport = 80\nservice_name = \"api-svc\"\n",
            "berth.toml",
            std::path::Path::new("/app"),
        )
        .expect("a stack")
    }

    fn stalled_service(report: &StatusReport) -> Option<String> {
        super::stalled_service(&stack(), report)
    }

    #[test]
    fn a_service_stalls_at_the_breaker_threshold_with_its_last_reason() {
        // Threshold for 2 tasks is 3 (S2.3); for 10 it is 5.
        assert_eq!(stalled_service(&report(2, 2, false)), None);
        let message = stalled_service(&report(2, 3, false)).expect("stalled");
        assert!(
            message.starts_with("service api cannot start: 3 of its tasks failed in a row"),
            "{message}"
        );
        assert!(
            message.contains("stopped because: CannotPullContainerError: pull image x: gone\n"),
            "the newest stopped task's reason: {message}"
        );
        assert!(message.contains("`berth logs api`"), "{message}");
        assert_eq!(stalled_service(&report(10, 4, false)), None);
        assert!(stalled_service(&report(10, 5, false)).is_some());
        // A steady service, or one scaled to zero, is never stalled.
        assert_eq!(stalled_service(&report(2, 3, true)), None);
        assert_eq!(stalled_service(&report(0, 3, false)), None);
    }
}
