//! `berth status`: services, deployments, tasks, targets and recent events of the running
//! stack, asked of the running berth through its control socket; on an AWS environment,
//! read from ECS and the ALB (`commands::aws_ops::status`) and rendered by the same tables.

use berth_local::control::{Request, Response, StatusReport};

use crate::commands::running::{connect, local_run_dir};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{Paint, Style, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many recent events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        return crate::commands::aws_ops::status(cx, &stack, environment, &args).await;
    }
    let run_dir = local_run_dir(cx, &stack)?;
    let mut client = connect(&run_dir).await?;
    let response = client
        .request(&Request::Status)
        .await
        .map_err(|e| CliError::Failed(e.into()))?;
    let Response::Status { status } = response else {
        return Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the status request with {response:?}"
        )));
    };
    if cx.output.is_json() {
        cx.output.json(&status)?;
    } else {
        cx.output.text(render(
            &status,
            cx.output.width(),
            cx.output.style(),
            args.events,
        ));
    }
    Ok(())
}

/// The status as text: a header line, then the services, tasks, targets and events tables.
pub fn render(status: &StatusReport, width: usize, style: Style, events: usize) -> String {
    let mut out = format!(
        "{} {} ({}) at {}  berth pid {}\n",
        style.paint(Paint::Bold, "stack"),
        status.stack,
        status.environment,
        style.paint(Paint::Bold, &status.url),
        status.pid,
    );
    out.push_str(&render_tables(status, width, style, events));
    out
}

/// The tables of [`render`] without its header (the AWS environment's status has its own).
pub fn render_tables(status: &StatusReport, width: usize, style: Style, events: usize) -> String {
    let mut out = String::new();

    let mut services = Table::new([
        "SERVICE",
        "DESIRED",
        "RUNNING",
        "PENDING",
        "STATE",
        "DEPLOYMENT",
        "ROLLOUT",
    ]);
    for service in &status.services {
        // Plain cells: the table measures characters, and colour codes would skew it.
        let state = if service.steady_state {
            "steady"
        } else {
            "converging"
        };
        let primary = service.deployments.first();
        services.row([
            service.service_name.clone(),
            service.desired_count.to_string(),
            service.running_count.to_string(),
            service.pending_count.to_string(),
            state.to_owned(),
            primary.map_or_else(String::new, |d| format!("{} {}", d.id, d.status)),
            primary.map_or_else(String::new, |d| d.rollout_state.to_string()),
        ]);
    }
    out.push('\n');
    out.push_str(&services.render(width, style));

    if let Some(database) = &status.database {
        let mut table = Table::new(["DATABASE", "STATE", "PORT", "PID", "RESTARTS", "LAST EVENT"]);
        table.row([
            database.name.clone(),
            database.state.to_string(),
            database.port.to_string(),
            database.pid.map_or_else(String::new, |p| p.to_string()),
            database.restarts.to_string(),
            database.last_event.as_ref().map_or_else(String::new, |e| {
                format!("{} {}", e.created_at.format("%H:%M:%S"), e.message)
            }),
        ]);
        out.push('\n');
        out.push_str(&table.render(width, style));
    }

    // Every PRIMARY and ACTIVE deployment: more than one row per service means a rollout.
    let mut deployments = Table::new([
        "SERVICE",
        "DEPLOYMENT",
        "STATUS",
        "REVISION",
        "RUNNING",
        "PENDING",
        "FAILED",
        "ROLLOUT",
        "STRATEGY",
        "STAGE",
        "REASON",
    ]);
    for service in &status.services {
        for d in &service.deployments {
            deployments.row([
                service.service_name.clone(),
                d.id.clone(),
                d.status.to_string(),
                d.task_definition.clone(),
                d.running_count.to_string(),
                d.pending_count.to_string(),
                d.failed_tasks.to_string(),
                d.rollout_state.to_string(),
                d.strategy.to_string(),
                d.lifecycle_stage.clone().unwrap_or_else(|| "-".to_owned()),
                d.rollout_state_reason.clone(),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&deployments.render(width, style));
    out.push_str(&render_autoscaling(status, width, style));

    let mut tasks = Table::new([
        "TASK", "SERVICE", "REVISION", "STATUS", "HEALTH", "TARGET", "PORT", "PID", "STOPPED",
    ]);
    for service in &status.services {
        for task in &service.tasks {
            let t = &task.task;
            let stopped = match (&t.stop_code, &t.stopped_reason) {
                (Some(code), Some(reason)) => match t.exit_code {
                    Some(exit) => format!("{code}: {reason} (exit {exit})"),
                    None => format!("{code}: {reason}"),
                },
                _ => String::new(),
            };
            tasks.row([
                t.task_id.to_string(),
                service.service_name.clone(),
                task.task_definition.clone(),
                t.last_status.to_string(),
                t.health_status.to_string(),
                task.target_health
                    .as_ref()
                    .map_or_else(String::new, |h| h.state.to_string()),
                if t.port == 0 {
                    String::new()
                } else {
                    t.port.to_string()
                },
                t.pid.map_or_else(String::new, |p| p.to_string()),
                stopped,
            ]);
        }
    }
    out.push('\n');
    out.push_str(&tasks.render(width, style));

    // Each target group's share of the rules that forward to it (a traffic shift moves it).
    let mut weights = Table::new(["TARGET GROUP", "RULE", "WEIGHT", "TRAFFIC"]);
    for group in &status.target_groups {
        for weight in &group.weights {
            weights.row([
                group.target_group_name.clone(),
                weight.rule.clone(),
                weight.weight.to_string(),
                format!("{:.1}%", weight.percent),
            ]);
        }
    }
    if status.target_groups.iter().any(|g| !g.weights.is_empty()) {
        out.push('\n');
        out.push_str(&weights.render(width, style));
    }

    let mut targets = Table::new(["TARGET GROUP", "TARGET", "STATE", "REASON", "DESCRIPTION"]);
    for group in &status.target_groups {
        for target in &group.targets {
            targets.row([
                group.target_group_name.clone(),
                target.target.to_string(),
                target.state.to_string(),
                target.reason.clone().unwrap_or_default(),
                target.description.clone().unwrap_or_default(),
            ]);
        }
    }
    if status.target_groups.iter().any(|g| !g.targets.is_empty()) {
        out.push('\n');
        out.push_str(&targets.render(width, style));
    }

    let mut recent: Vec<_> = status
        .services
        .iter()
        .flat_map(|s| s.events.iter())
        .collect();
    recent.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    if events > 0 && !recent.is_empty() {
        let mut table = Table::new(["TIME", "EVENT"]);
        for event in recent.into_iter().take(events) {
            table.row([
                event.created_at.format("%H:%M:%S").to_string(),
                event.message.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render(width, style));
    }
    if !status.local_differences.is_empty() {
        out.push('\n');
        out.push_str(&style.paint(Paint::Dim, "local runtime differences from AWS:"));
        out.push('\n');
        for difference in &status.local_differences {
            out.push_str(&style.paint(Paint::Dim, format!("  {difference}")));
            out.push('\n');
        }
    }
    out
}

/// Each scaled service's target tracking, then its recent scaling activities.
fn render_autoscaling(status: &StatusReport, width: usize, style: Style) -> String {
    let scaled: Vec<_> = status
        .services
        .iter()
        .filter_map(|s| Some((s, s.autoscaling.as_ref()?)))
        .collect();
    if scaled.is_empty() {
        return String::new();
    }
    let mut policies = Table::new([
        "SERVICE",
        "MIN",
        "MAX",
        "METRIC",
        "TARGET",
        "LAST",
        "COOLDOWN OUT/IN",
    ]);
    let mut activities = Table::new(["TIME", "SERVICE", "DESIRED", "CAUSE"]);
    for (service, scaling) in &scaled {
        policies.row([
            service.service_name.clone(),
            scaling.min_capacity.to_string(),
            scaling.max_capacity.to_string(),
            scaling.metric.clone(),
            format!("{}", scaling.target_value),
            scaling
                .last_datapoint
                .map_or_else(|| "no data".to_owned(), |d| format!("{d:.1}")),
            format!(
                "{}s/{}s",
                scaling.scale_out_cooldown_seconds, scaling.scale_in_cooldown_seconds
            ),
        ]);
        for activity in &scaling.activities {
            activities.row([
                activity.at.format("%H:%M:%S").to_string(),
                service.service_name.clone(),
                format!("{} → {}", activity.from, activity.to),
                activity.cause.clone(),
            ]);
        }
    }
    let mut out = format!("\n{}", policies.render(width, style));
    if scaled.iter().any(|(_, s)| !s.activities.is_empty()) {
        out.push('\n');
        out.push_str(&activities.render(width, style));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use berth_local::control::TargetGroupStatus;
    use berth_local::database::{DatabaseEvent, DatabaseState, DatabaseStatusView};
    use berth_local::service::{
        AutoscalingStatus, Deployment, DeploymentConfiguration, DeploymentStatus,
        DeploymentStrategy, RuleWeight, ScalingActivity, ServiceEvent, ServiceStatus,
        ServiceTaskStatus, TargetHealthView, TargetState,
    };
    use berth_local::task::{StopCode, TaskId, TaskSnapshot, TaskStatus};

    use super::*;

    fn report() -> StatusReport {
        let target: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let mut running = TaskSnapshot::provisioning(TaskId::from("a".repeat(32)), 40001);
        running.last_status = TaskStatus::Running;
        running.pid = Some(4242);
        let mut stopped = TaskSnapshot::provisioning(TaskId::from("b".repeat(32)), 40002);
        stopped.finish(
            StopCode::EssentialContainerExited,
            "Essential container in task exited".into(),
            Some(137),
        );
        let health = TargetHealthView {
            target,
            state: TargetState::Unhealthy,
            reason: Some("Target.Timeout".into()),
            description: Some("Request timed out".into()),
        };
        let mut deployment = Deployment::new_primary("backend-task:2".into(), "img".into(), 1);
        deployment.strategy = DeploymentStrategy::Canary;
        deployment.lifecycle_stage = Some("BAKE_TIME".into());
        let blue = Deployment {
            status: DeploymentStatus::Active,
            ..Deployment::new_primary("backend-task:1".into(), "img".into(), 1)
        };
        StatusReport {
            stack: "ecs-production".into(),
            environment: "local".into(),
            url: "http://127.0.0.1:8080".into(),
            pid: 1,
            started_at: chrono::Utc::now(),
            services: vec![ServiceStatus {
                service_name: "backend-service".into(),
                desired_count: 1,
                running_count: 1,
                pending_count: 0,
                target_group: Some("backend-tg".into()),
                health_check_grace_period_seconds: 0,
                deployment_configuration: DeploymentConfiguration::default(),
                steady_state: false,
                deployments: vec![deployment, blue],
                tasks: vec![
                    ServiceTaskStatus {
                        task: running,
                        deployment_id: "ecs-svc/1".into(),
                        task_definition: "backend-task:1".into(),
                        target_health: Some(health.clone()),
                    },
                    ServiceTaskStatus {
                        task: stopped,
                        deployment_id: "ecs-svc/1".into(),
                        task_definition: "backend-task:1".into(),
                        target_health: None,
                    },
                ],
                events: vec![ServiceEvent {
                    created_at: chrono::Utc::now(),
                    message: "(service backend-service) has reached a steady state.".into(),
                }],
                autoscaling: Some(AutoscalingStatus {
                    min_capacity: 1,
                    max_capacity: 4,
                    metric: "ALBRequestCountPerTarget".into(),
                    target_value: 600.0,
                    scale_out_cooldown_seconds: 5.0,
                    scale_in_cooldown_seconds: 10.0,
                    last_datapoint: Some(1234.5),
                    activities: vec![ScalingActivity {
                        at: chrono::Utc::now(),
                        from: 1,
                        to: 3,
                        description: "Setting desired count to 3.".into(),
                        cause: "monitor alarm TargetTracking-x-AlarmHigh in state ALARM".into(),
                    }],
                }),
            }],
            target_groups: vec![TargetGroupStatus {
                target_group_name: "backend-tg".into(),
                service: "backend-service".into(),
                weights: vec![RuleWeight {
                    rule: "priority 10".into(),
                    weight: 950,
                    percent: 95.0,
                }],
                targets: vec![health],
            }],
            database: Some(DatabaseStatusView {
                name: "fileanalyzer".into(),
                state: DatabaseState::Available,
                port: 5433,
                pid: Some(777),
                restarts: 1,
                last_event: Some(DatabaseEvent {
                    created_at: chrono::Utc::now(),
                    message: "DB instance restarted".into(),
                }),
            }),
            local_differences: vec!["health checks every 2s".into()],
        }
    }

    #[test]
    fn status_shows_services_database_tasks_targets_and_events_within_the_width() {
        let narrow = render(&report(), 80, Style { enabled: false }, 10);
        assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
        let text = render(&report(), 200, Style { enabled: false }, 10);
        for expected in [
            "backend-service",
            "PRIMARY",
            "backend-task:1",
            "IN_PROGRESS",
            "converging",
            "RUNNING",
            "4242",
            "STOPPED",
            "unhealthy",
            "Target.Timeout",
            "priority 10",
            "95.0%",
            "ACTIVE",
            "CANARY",
            "BAKE_TIME",
            "has reached a steady state.",
            "health checks every 2s",
            "fileanalyzer",
            "available",
            "DB instance restarted",
            "ALBRequestCountPerTarget",
            "1234.5",
            "5s/10s",
            "1 → 3",
            "AlarmHigh in state ALARM",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
