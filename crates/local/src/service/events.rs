//! Service event messages in ECS's exact wording (ECS-SEMANTICS S2.18).

use crate::task::TaskId;

fn task_list(tasks: &[TaskId]) -> String {
    tasks
        .iter()
        .map(|t| format!("(task {t})"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn started(service: &str, tasks: &[TaskId]) -> String {
    format!(
        "(service {service}) has started {} tasks: {}.",
        tasks.len(),
        task_list(tasks)
    )
}

pub fn stopped(service: &str, tasks: &[TaskId]) -> String {
    format!(
        "(service {service}) has stopped {} running tasks: {}.",
        tasks.len(),
        task_list(tasks)
    )
}

pub fn steady_state(service: &str) -> String {
    format!("(service {service}) has reached a steady state.")
}

pub fn registered(service: &str, count: usize, target_group: &str) -> String {
    format!("(service {service}) registered {count} targets in (target-group {target_group})")
}

pub fn deregistered(service: &str, count: usize, target_group: &str) -> String {
    format!("(service {service}) deregistered {count} targets in (target-group {target_group})")
}

pub fn draining(service: &str, count: usize) -> String {
    format!("(service {service}) has begun draining connections on {count} tasks.")
}

pub fn unhealthy_target(
    service: &str,
    task: &TaskId,
    port: u16,
    target_group: &str,
    description: &str,
) -> String {
    format!(
        "(service {service}) (task {task}) (port {port}) is unhealthy in (target-group {target_group}) due to (reason {description})"
    )
}

pub fn failed_container_health_checks(service: &str, task: &TaskId) -> String {
    format!("(service {service}) (task {task}) failed container health checks.")
}

pub fn unable_to_start(service: &str) -> String {
    format!("(service {service}) is unable to consistently start tasks successfully.")
}

pub fn deployment_completed(service: &str, deployment: &str) -> String {
    format!("(service {service}) (deployment {deployment}) deployment completed.")
}

pub fn deployment_failed(service: &str, deployment: &str) -> String {
    format!(
        "(service {service}) (deployment {deployment}) deployment failed: tasks failed to start."
    )
}

/// StopServiceDeployment: no ECS wording is known for it, this follows `deployment failed`.
pub fn deployment_stopped(service: &str, deployment: &str) -> String {
    format!("(service {service}) (deployment {deployment}) deployment stopped: rollback requested.")
}

pub fn rolling_back(service: &str, deployment: &str) -> String {
    format!("(service {service}) rolling back to deployment {deployment}.")
}

pub fn stuck(service: &str) -> String {
    format!(
        "service ({service}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_matches_ecs() {
        let a = TaskId::from("0123456789abcdef0123456789abcdef");
        let b = TaskId::from("fedcba9876543210fedcba9876543210");
        assert_eq!(
            started("backend-service", &[a.clone(), b]),
            "(service backend-service) has started 2 tasks: (task 0123456789abcdef0123456789abcdef) (task fedcba9876543210fedcba9876543210)."
        );
        assert_eq!(
            stopped("web", std::slice::from_ref(&a)),
            "(service web) has stopped 1 running tasks: (task 0123456789abcdef0123456789abcdef)."
        );
        assert_eq!(
            steady_state("web"),
            "(service web) has reached a steady state."
        );
        assert_eq!(
            registered("web", 1, "targetgroup/frontend-tg"),
            "(service web) registered 1 targets in (target-group targetgroup/frontend-tg)"
        );
        assert_eq!(
            unhealthy_target("web", &a, 4000, "tg", "Request timed out"),
            "(service web) (task 0123456789abcdef0123456789abcdef) (port 4000) is unhealthy in (target-group tg) due to (reason Request timed out)"
        );
    }
}
