//! `berth status -e <aws env>`: the stack's services, deployments, tasks, target health and
//! recent events, read from DescribeServices, ListTasks/DescribeTasks and
//! DescribeTargetHealth. Read-only; the words are ECS's (the shared `berth_spec::status`
//! vocabulary), so that the CLI renders this as it renders the local runtime's status.

use aws_sdk_ecs::types as ecs;
use berth_spec::status::{DeploymentStatus, DeploymentStrategy, RolloutState, TargetState};
use berth_spec::{Service, Stack};
use chrono::{DateTime, Utc};

use crate::clients::Clients;
use crate::error::{self, Result};

/// Everything `status` shows.
#[derive(Debug, Clone, Default)]
pub struct StackStatus {
    /// `http://<the ALB's DNS name>`, when it exists.
    pub url: Option<String>,
    /// The stack's services that exist, in the stack file's order.
    pub services: Vec<ServiceState>,
    /// The stack's services that do not exist (yet).
    pub missing: Vec<String>,
    pub target_groups: Vec<TargetGroupState>,
}

#[derive(Debug, Clone)]
pub struct ServiceState {
    pub name: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub target_group: Option<String>,
    pub grace_period_secs: u32,
    /// Newest first.
    pub deployments: Vec<DeploymentState>,
    pub tasks: Vec<TaskState>,
    /// Newest first.
    pub events: Vec<(DateTime<Utc>, String)>,
}

#[derive(Debug, Clone)]
pub struct DeploymentState {
    pub id: String,
    pub status: DeploymentStatus,
    /// `<family>:<revision>`.
    pub task_definition: String,
    pub strategy: DeploymentStrategy,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub failed_tasks: u32,
    /// Absent without a circuit breaker (and from moto).
    pub rollout_state: Option<RolloutState>,
    pub rollout_state_reason: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct TaskState {
    /// The last segment of the task's ARN.
    pub id: String,
    /// `<family>:<revision>`.
    pub task_definition: String,
    /// The deployment that started it (`startedBy`).
    pub deployment_id: String,
    pub last_status: String,
    pub desired_status: String,
    pub health_status: String,
    /// `ip:port` of its ENI, as the target group registers it.
    pub target: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// The essential container's exit code.
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct TargetGroupState {
    pub name: String,
    /// The ECS service it belongs to.
    pub service: String,
    pub targets: Vec<TargetView>,
}

#[derive(Debug, Clone)]
pub struct TargetView {
    /// `ip:port`.
    pub target: String,
    pub state: TargetState,
    pub reason: Option<String>,
    pub description: Option<String>,
}

pub(crate) fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// `…:task-definition/backend-task:3` → `backend-task:3`.
pub fn short_task_definition(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

/// `…:targetgroup/backend-tg/0123` → `backend-tg`.
fn target_group_name(arn: &str) -> String {
    arn.split("targetgroup/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(arn)
        .to_owned()
}

/// An ECS deployment in the shared vocabulary.
/// `strategy`: the service's (ECS lists it per service, not per deployment).
pub(crate) fn deployment(d: &ecs::Deployment, strategy: DeploymentStrategy) -> DeploymentState {
    let status = match d.status() {
        Some("PRIMARY") => DeploymentStatus::Primary,
        Some("ACTIVE") => DeploymentStatus::Active,
        _ => DeploymentStatus::Inactive,
    };
    let rollout_state = d.rollout_state().and_then(|s| match s {
        ecs::DeploymentRolloutState::Completed => Some(RolloutState::Completed),
        ecs::DeploymentRolloutState::Failed => Some(RolloutState::Failed),
        ecs::DeploymentRolloutState::InProgress => Some(RolloutState::InProgress),
        _ => None,
    });
    DeploymentState {
        id: d.id().unwrap_or("").to_owned(),
        status,
        task_definition: short_task_definition(d.task_definition().unwrap_or("")),
        strategy,
        desired_count: count(d.desired_count()),
        running_count: count(d.running_count()),
        pending_count: count(d.pending_count()),
        failed_tasks: count(d.failed_tasks()),
        rollout_state,
        rollout_state_reason: d.rollout_state_reason().unwrap_or("").to_owned(),
        created_at: time(d.created_at()),
        updated_at: time(d.updated_at()),
    }
}

/// The service's deployment strategy; ROLLING when it names none (ECS's default, and moto,
/// which reports no deployment configuration).
pub(crate) fn strategy_of(service: &ecs::Service) -> DeploymentStrategy {
    match service
        .deployment_configuration()
        .and_then(|c| c.strategy())
    {
        Some(ecs::DeploymentStrategy::BlueGreen) => DeploymentStrategy::BlueGreen,
        Some(ecs::DeploymentStrategy::Canary) => DeploymentStrategy::Canary,
        Some(ecs::DeploymentStrategy::Linear) => DeploymentStrategy::Linear,
        _ => DeploymentStrategy::Rolling,
    }
}

/// `port`: the service's container port, which the target group registers the task's IP
/// with (awsvpc tasks have no host port binding).
fn task(t: &ecs::Task, port: u16) -> TaskState {
    let essential = t.containers().first();
    let target = t
        .attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .map(|ip| format!("{ip}:{port}"));
    TaskState {
        id: t
            .task_arn()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or("")
            .to_owned(),
        task_definition: short_task_definition(t.task_definition_arn().unwrap_or("")),
        deployment_id: t.started_by().unwrap_or("").to_owned(),
        last_status: t.last_status().unwrap_or("").to_owned(),
        desired_status: t.desired_status().unwrap_or("").to_owned(),
        health_status: t
            .health_status()
            .map_or("UNKNOWN", |h| h.as_str())
            .to_owned(),
        target,
        created_at: time(t.created_at()),
        started_at: time(t.started_at()),
        stopped_at: time(t.stopped_at()),
        stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
        stopped_reason: t.stopped_reason().map(str::to_owned),
        exit_code: essential.and_then(|c| c.exit_code()),
    }
}

fn target_state(
    state: Option<&aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum>,
) -> TargetState {
    use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum as S;
    match state {
        Some(S::Healthy) => TargetState::Healthy,
        Some(S::Initial) => TargetState::Initial,
        Some(S::Draining) => TargetState::Draining,
        Some(S::Unused) => TargetState::Unused,
        Some(S::Unavailable) => TargetState::Unavailable,
        _ => TargetState::Unhealthy,
    }
}

/// The stack's status, from describe calls only.
pub(crate) async fn status(c: &Clients, stack: &Stack) -> Result<StackStatus> {
    let names: Vec<String> = stack
        .services
        .iter()
        .map(|s| s.service_name.clone())
        .collect();
    let found = if names.is_empty() {
        Vec::new()
    } else {
        c.services.describe(&stack.cluster, names).await?
    };
    let mut out = StackStatus {
        url: url(c, stack).await?,
        ..StackStatus::default()
    };
    for spec in &stack.services {
        let Some(service) = found
            .iter()
            .find(|s| s.service_name() == Some(spec.service_name.as_str()))
            .filter(|s| s.status() != Some("INACTIVE"))
        else {
            out.missing.push(spec.service_name.clone());
            continue;
        };
        let state = service_state(c, stack, spec, service).await?;
        // Both groups of a blue/green, canary or linear service: green's tasks register in
        // the alternate one.
        let groups = service.load_balancers().first().map(|l| {
            l.target_group_arn().into_iter().chain(
                l.advanced_configuration()
                    .and_then(|a| a.alternate_target_group_arn()),
            )
        });
        for arn in groups.into_iter().flatten() {
            out.target_groups.push(TargetGroupState {
                name: target_group_name(arn),
                service: spec.service_name.clone(),
                targets: targets(c, arn).await?,
            });
        }
        out.services.push(state);
    }
    Ok(out)
}

async fn service_state(
    c: &Clients,
    stack: &Stack,
    spec: &Service,
    service: &ecs::Service,
) -> Result<ServiceState> {
    let mut state = ServiceState {
        name: spec.service_name.clone(),
        desired_count: count(service.desired_count()),
        running_count: count(service.running_count()),
        pending_count: count(service.pending_count()),
        target_group: service
            .load_balancers()
            .first()
            .and_then(|l| l.target_group_arn())
            .map(target_group_name),
        grace_period_secs: service.health_check_grace_period_seconds().map_or(0, count),
        deployments: service
            .deployments()
            .iter()
            .map(|d| deployment(d, strategy_of(service)))
            .collect(),
        tasks: Vec::new(),
        events: service
            .events()
            .iter()
            .filter_map(|e| Some((time(e.created_at())?, e.message()?.to_owned())))
            .collect(),
    };
    state.tasks = tasks(
        c,
        stack,
        spec,
        &[ecs::DesiredStatus::Running, ecs::DesiredStatus::Stopped],
    )
    .await?;
    Ok(state)
}

/// The service's tasks of each desired status in turn (RUNNING, then STOPPED: the recently
/// stopped ones, which ECS keeps about an hour).
pub(crate) async fn tasks(
    c: &Clients,
    stack: &Stack,
    service: &Service,
    statuses: &[ecs::DesiredStatus],
) -> Result<Vec<TaskState>> {
    let mut arns = Vec::new();
    for desired in statuses.iter().cloned() {
        let listed = c
            .ecs
            .list_tasks()
            .cluster(&stack.cluster)
            .service_name(&service.service_name)
            .desired_status(desired)
            .send()
            .await
            .map_err(error::call("ecs:ListTasks"))?;
        arns.extend(listed.task_arns().iter().cloned());
    }
    let mut found = Vec::new();
    // DescribeTasks takes at most 100 tasks a call.
    for chunk in arns.chunks(100) {
        let described = c
            .ecs
            .describe_tasks()
            .cluster(&stack.cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(error::call("ecs:DescribeTasks"))?;
        found.extend(described.tasks().iter().map(|t| task(t, service.port)));
    }
    Ok(found)
}

async fn targets(c: &Clients, target_group_arn: &str) -> Result<Vec<TargetView>> {
    let out = c
        .elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(error::call("elasticloadbalancing:DescribeTargetHealth"))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let target = d.target();
            let health = d.target_health();
            TargetView {
                target: format!(
                    "{}:{}",
                    target.and_then(|t| t.id()).unwrap_or(""),
                    target.and_then(|t| t.port()).unwrap_or(0)
                ),
                state: target_state(health.and_then(|h| h.state())),
                reason: health
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_owned()),
                description: health.and_then(|h| h.description()).map(str::to_owned),
            }
        })
        .collect())
}

async fn url(c: &Clients, stack: &Stack) -> Result<Option<String>> {
    let found = c
        .elb
        .describe_load_balancers()
        .names(&stack.load_balancer.name)
        .send()
        .await;
    let out = match found {
        Ok(out) => out,
        Err(e) if error::code(&e) == Some("LoadBalancerNotFound") => return Ok(None),
        Err(e) => return Err(error::call("elasticloadbalancing:DescribeLoadBalancers")(e)),
    };
    let scheme = if stack.load_balancer.https.is_some() {
        "https"
    } else {
        "http"
    };
    Ok(out
        .load_balancers()
        .first()
        .and_then(|lb| lb.dns_name())
        .map(|dns| format!("{scheme}://{dns}")))
}
