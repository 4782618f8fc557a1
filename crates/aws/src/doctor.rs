//! `berth doctor -e <aws env>`: the tutorial's troubleshooting list (seed, "Operational
//! Troubleshooting"; S1, S2, S5) checked against the account, each finding with what is
//! wrong and what to change.
//!
//! [`diagnose`] is pure: [`Facts`] in (the discovery [`Snapshot`] plus what only the doctor
//! reads: the execution role's policy documents, whether each task definition's image is in
//! its repository, the secrets' parameters, the services' deployments and stopped tasks),
//! [`Finding`]s out. `doctor_facts::gather` fills the facts with describe calls only.
//!
//! The checks, in the order a task meets the failures:
//! - pull: each private subnet routes 0.0.0.0/0 to an existing NAT gateway; the execution
//!   role may pull from the stack's repositories; each task definition's image is in ECR;
//! - logs: each log group exists and the execution role may write to it;
//! - secrets: each parameter the services read exists, the execution role may
//!   `ssm:GetParameters` it and, for a SecureString under a customer managed KMS key,
//!   `kms:Decrypt` with that key (the default `aws/ssm` key needs no grant);
//! - targets: the security group chain (ALB-SG ← clients, ECS-SG ← ALB-SG on each
//!   container port, RDS-SG ← ECS-SG on the database port) and which groups are attached;
//!   each target group's health check path, matcher and port against the stack;
//! - deploy: no deployment FAILED or IN_PROGRESS longer than [`Options::stuck_after`], and
//!   what the stopped tasks of a deployment died of.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_spec::{IngressSource, NatGateways, ParameterValue, SecurityGroupRole, Service, Stack};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::desired::{EXECUTION_POLICY_ARN, parameter_arn, sg_id};
use crate::discover::Snapshot;
use crate::policy::{Verdict, evaluate};
use crate::resource::{Actual, Kind, Value};
use crate::status::{DeploymentState, TaskState};
use berth_spec::status::RolloutState;

/// How the doctor judges.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time the facts were read at.
    pub now: DateTime<Utc>,
    /// A deployment in progress for longer is stuck.
    pub stuck_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            now: Utc::now(),
            stuck_after: DEFAULT_STUCK_AFTER,
        }
    }
}

/// ECS's own default for a rolling deployment to reach steady state is not documented as a
/// bound; 30 minutes is three times what the seed's stack needs (grace period, two health
/// checks of 30 s, draining 300 s).
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(30 * 60);

/// What the doctor reads from the account.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub snapshot: Snapshot,
    /// The execution role's policy documents (attached managed ones, inline ones), JSON.
    pub execution_policies: Vec<String>,
    /// Per service (the stack's name) with a task definition: its image, and whether its
    /// ECR repository holds it (`None`: not an image of this account's ECR, not checked).
    pub images: BTreeMap<String, (String, Option<bool>)>,
    /// Each parameter a service reads as a secret; `None` when it does not exist.
    pub parameters: BTreeMap<String, Option<ParameterFact>>,
    /// Per service (the stack's name) that exists on ECS.
    pub services: BTreeMap<String, ServiceFact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterFact {
    pub secure: bool,
    /// The KMS key of a SecureString as SSM reports it (`alias/aws/ssm` by default).
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceFact {
    /// Newest first.
    pub deployments: Vec<DeploymentState>,
    /// Its recently stopped tasks (ECS keeps them about an hour).
    pub stopped: Vec<TaskState>,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `area: subject` (`pull: image of backend`).
    pub check: String,
    pub status: Status,
    /// What is wrong; empty when ok.
    pub problem: String,
    /// What to change; empty when ok.
    pub fix: String,
}

/// Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Finding {
    fn ok(check: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            status: Status::Ok,
            problem: String::new(),
            fix: String::new(),
        }
    }

    fn fail(check: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status: Status::Fail,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn warn(check: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            status: Status::Warn,
            ..Finding::fail(check, problem, fix)
        }
    }
}

/// Every check over `facts`, in the order a starting task meets the failures.
pub fn diagnose(stack: &Stack, facts: &Facts, options: &Options) -> Vec<Finding> {
    let cx = Cx {
        stack,
        facts,
        up: format!("`berth up -e {}`", facts.snapshot.known.environment),
        env: facts.snapshot.known.environment.clone(),
    };
    let mut out = Vec::new();
    out.extend(nat_routes(&cx));
    out.push(execution_role_pulls(&cx));
    for service in &stack.services {
        out.push(image(&cx, service));
    }
    for service in &stack.services {
        out.push(log_group(&cx, service));
    }
    out.extend(secrets(&cx));
    out.extend(security_group_rules(&cx));
    out.push(security_groups_attached(&cx));
    for service in &stack.services {
        out.push(health_check(&cx, service));
    }
    for service in &stack.services {
        out.push(deployments(&cx, service, options));
    }
    out
}

struct Cx<'a> {
    stack: &'a Stack,
    facts: &'a Facts,
    /// `` `berth up -e ENV` ``: what restores what the stack file says.
    up: String,
    env: String,
}

impl Cx<'_> {
    fn get(&self, id: &str) -> Option<&Actual> {
        self.facts.snapshot.get(id)
    }

    fn attr<'a>(&'a self, id: &str, key: &str) -> Option<&'a str> {
        match self.get(id)?.attrs.get(key)? {
            Value::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    fn role(&self) -> &str {
        &self.stack.iam.execution_role.name
    }

    fn allows(&self, action: &str, resource: &str) -> Verdict {
        evaluate(&self.facts.execution_policies, action, resource)
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        let known = &self.facts.snapshot.known;
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            known.region, known.account_id
        )
    }
}

fn items(text: &str) -> Vec<&str> {
    text.split(", ").filter(|s| !s.is_empty()).collect()
}

fn nat_routes(cx: &Cx<'_>) -> Vec<Finding> {
    let net = &cx.stack.network;
    if net.nat == NatGateways::None {
        return vec![Finding::warn(
            "pull: NAT gateways",
            "the stack has no NAT gateway (network.nat = \"none\"): tasks in the private subnets reach ECR, CloudWatch Logs and SSM only through VPC endpoints",
            format!(
                "set network.nat = \"single\" or \"per_az\" and run {}, or give the VPC endpoints for ecr.api, ecr.dkr, logs, ssm and S3",
                cx.up
            ),
        )];
    }
    (0..net.private_subnets.len())
        .map(|i| {
            let subnet = format!("subnet/private-{}", i + 1);
            let check = format!("pull: route of private subnet {}", i + 1);
            let Some(s) = cx.get(&subnet) else {
                return Finding::fail(
                    check,
                    format!("{subnet} does not exist"),
                    format!("{} creates it", cx.up),
                );
            };
            let table = cx.facts.snapshot.actual.iter().find(|a| {
                a.kind == Kind::RouteTable
                    && matches!(a.attrs.get("subnets"), Some(Value::Text(t)) if items(t).contains(&subnet.as_str()))
            });
            let Some(table) = table else {
                return Finding::fail(
                    check,
                    format!(
                        "{} ({}) is in no route table of the stack: it uses the VPC's main route table, which has no route to a NAT gateway, so its tasks cannot reach ECR (CannotPullContainerError)",
                        s.name, s.physical
                    ),
                    format!(
                        "associate it with the stack's private route table ({} does)",
                        cx.up
                    ),
                );
            };
            let target = match table.attrs.get("default_route") {
                Some(Value::Text(t)) => t.as_str(),
                _ => "",
            };
            let fix = format!(
                "route 0.0.0.0/0 of {} ({}) to a NAT gateway of the stack ({} restores it)",
                table.name, table.physical, cx.up
            );
            if target.starts_with("nat/") && cx.get(target).is_some() {
                Finding::ok(check)
            } else if target.is_empty() {
                Finding::fail(
                    check,
                    format!(
                        "route table {} has no default route (0.0.0.0/0): tasks in {} cannot reach ECR to pull their image (CannotPullContainerError)",
                        table.name, s.name
                    ),
                    fix,
                )
            } else if target == "igw" {
                Finding::fail(
                    check,
                    format!(
                        "route table {} sends 0.0.0.0/0 to the internet gateway, but tasks in private subnets get no public IP: they cannot reach ECR",
                        table.name
                    ),
                    fix,
                )
            } else {
                Finding::fail(
                    check,
                    format!(
                        "route table {} sends 0.0.0.0/0 to {target}, which is no NAT gateway of the stack that exists (a deleted gateway leaves a blackhole route)",
                        table.name
                    ),
                    fix,
                )
            }
        })
        .collect()
}

/// The execution role's verdicts that are not Allowed, as `action on resource` texts, and
/// whether one of them is an explicit Deny.
fn refused(cx: &Cx<'_>, wanted: &[(&str, String)]) -> (Vec<String>, bool) {
    let mut missing = Vec::new();
    let mut denied = false;
    for (action, resource) in wanted {
        match cx.allows(action, resource) {
            Verdict::Allowed => {}
            verdict => {
                denied |= verdict == Verdict::Denied;
                missing.push(format!("{action} on {resource}"));
            }
        }
    }
    (missing, denied)
}

fn deny_note(denied: bool) -> &'static str {
    if denied {
        " and remove the Deny statement that names it"
    } else {
        ""
    }
}

fn execution_role_pulls(cx: &Cx<'_>) -> Finding {
    let check = "pull: execution role may pull images";
    if cx.get("role/execution").is_none() {
        return Finding::fail(
            check,
            format!("execution role {} does not exist", cx.role()),
            format!("{} creates it", cx.up),
        );
    }
    let mut wanted = vec![("ecr:GetAuthorizationToken", "*".to_owned())];
    for registry in &cx.stack.registries {
        let repo = cx.arn("ecr", &format!("repository/{}", registry.name));
        for action in [
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
        ] {
            wanted.push((action, repo.clone()));
        }
    }
    execution_policy_covers(cx, check, &wanted, "CannotPullContainerError")
}

/// `check` for what AmazonECSTaskExecutionRolePolicy grants: ok when the execution role
/// may do all of `wanted`, else what it may not, what its tasks then stop with
/// (`stops_with`) and the policy to attach.
fn execution_policy_covers(
    cx: &Cx<'_>,
    check: impl Into<String>,
    wanted: &[(&str, String)],
    stops_with: &str,
) -> Finding {
    let (missing, denied) = refused(cx, wanted);
    if missing.is_empty() {
        return Finding::ok(check);
    }
    Finding::fail(
        check,
        format!(
            "{} may not {}: its tasks stop with {stops_with}",
            cx.role(),
            missing.join(", ")
        ),
        format!(
            "attach AmazonECSTaskExecutionRolePolicy ({EXECUTION_POLICY_ARN}) to {}{} ({} attaches it)",
            cx.role(),
            deny_note(denied),
            cx.up
        ),
    )
}

fn image(cx: &Cx<'_>, service: &Service) -> Finding {
    let check = format!("pull: image of {}", service.name);
    match cx.facts.images.get(&service.name) {
        None => Finding::warn(
            check,
            format!(
                "{} has no task definition yet: the service waits for a first image in {}",
                service.name, service.repository
            ),
            format!(
                "`berth build {} --push -e {}`, then {}",
                service.name, cx.env, cx.up
            ),
        ),
        Some((_, Some(true) | None)) => Finding::ok(check),
        Some((image, Some(false))) => Finding::fail(
            check,
            format!(
                "the task definition runs {image}, which repository {} does not hold (never pushed, or deleted): tasks stop with CannotPullContainerError",
                service.repository
            ),
            format!(
                "push it (`berth build {name} --push -e {env}`) or release a tag the repository holds (`berth deploy {name} --image TAG -e {env}`)",
                name = service.name,
                env = cx.env
            ),
        ),
    }
}

fn log_group(cx: &Cx<'_>, service: &Service) -> Finding {
    let group = &service.logs.group;
    let check = format!("logs: {} writes to {group}", service.name);
    if cx.get(&format!("logs/{}", service.name)).is_none() {
        return Finding::fail(
            check,
            format!(
                "log group {group} does not exist: tasks stop with ResourceInitializationError (the awslogs driver cannot start)"
            ),
            format!("{} creates it", cx.up),
        );
    }
    let streams = cx.arn("logs", &format!("log-group:{group}:log-stream:*"));
    let wanted = [
        ("logs:CreateLogStream", streams.clone()),
        ("logs:PutLogEvents", streams),
    ];
    execution_policy_covers(cx, check, &wanted, "ResourceInitializationError")
}

/// The ARN a SecureString's KMS key id names (an alias ARN for an alias).
fn key_arn(cx: &Cx<'_>, key_id: &str) -> String {
    if key_id.starts_with("arn:") {
        key_id.to_owned()
    } else if key_id.starts_with("alias/") {
        cx.arn("kms", key_id)
    } else {
        cx.arn("kms", &format!("key/{key_id}"))
    }
}

fn secrets(cx: &Cx<'_>) -> Vec<Finding> {
    // Parameter → who reads it (`backend DB_PASSWORD`).
    let mut readers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for service in &cx.stack.services {
        for (var, name) in &service.secrets {
            readers
                .entry(name.as_str())
                .or_default()
                .push(format!("{} {var}", service.name));
        }
    }
    readers
        .into_iter()
        .map(|(name, readers)| {
            let check = format!("secrets: {name}");
            let read_by = readers.join(", ");
            let Some(Some(found)) = cx.facts.parameters.get(name) else {
                let managed = cx
                    .stack
                    .parameter(name)
                    .is_some_and(|p| !matches!(p.value, ParameterValue::Operator));
                let fix = if managed {
                    format!("{} creates it", cx.up)
                } else {
                    format!("`berth param put {name} VALUE -e {}`", cx.env)
                };
                return Finding::fail(
                    check,
                    format!(
                        "parameter {name} (read by {read_by}) does not exist: tasks stop with ResourceInitializationError (unable to pull secrets)"
                    ),
                    fix,
                );
            };
            let arn = parameter_arn(&cx.facts.snapshot.known, name);
            let mut wanted = vec![("ssm:GetParameters", arn.clone())];
            let custom_key = found
                .key_id
                .as_deref()
                .filter(|k| found.secure && !is_default_ssm_key(k));
            if let Some(key) = custom_key {
                wanted.push(("kms:Decrypt", key_arn(cx, key)));
            }
            let (missing, denied) = refused(cx, &wanted);
            if missing.is_empty() {
                return Finding::ok(check);
            }
            let kms = missing.iter().any(|m| m.starts_with("kms:"));
            let fix = if kms {
                format!(
                    "allow {} to the execution role {}{} (and the key's policy to the role), or put the parameter again under the default aws/ssm key (`berth param put {name} VALUE --overwrite -e {}`)",
                    missing.join(", "),
                    cx.role(),
                    deny_note(denied),
                    cx.env
                )
            } else {
                format!(
                    "allow ssm:GetParameters on {arn} to {}{} ({} writes berth's policy, which names every parameter of the stack)",
                    cx.role(),
                    deny_note(denied),
                    cx.up
                )
            };
            Finding::fail(
                check,
                format!(
                    "{} may not {} (read by {read_by}): tasks stop with ResourceInitializationError (unable to pull secrets)",
                    cx.role(),
                    missing.join(", ")
                ),
                fix,
            )
        })
        .collect()
}

fn is_default_ssm_key(key: &str) -> bool {
    key == "alias/aws/ssm" || key.ends_with(":alias/aws/ssm")
}

fn group_name(cx: &Cx<'_>, role: SecurityGroupRole) -> String {
    cx.stack
        .security_groups
        .get(role)
        .map_or_else(|| sg_id(role), |g| g.name.clone())
}

fn security_group_rules(cx: &Cx<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for role in [
        SecurityGroupRole::Alb,
        SecurityGroupRole::Ecs,
        SecurityGroupRole::Rds,
    ] {
        let Some(group) = cx.stack.security_groups.get(role) else {
            continue;
        };
        let id = sg_id(role);
        let actual = cx.get(&id);
        for rule in &group.ingress {
            let (source_text, source_name, source_physical) = match &rule.source {
                IngressSource::Cidr(cidr) => (cidr.to_string(), cidr.to_string(), String::new()),
                IngressSource::Group(source) => (
                    sg_id(*source),
                    group_name(cx, *source),
                    cx.get(&sg_id(*source))
                        .map_or_else(String::new, |a| format!(" ({})", a.physical)),
                ),
            };
            let check = format!(
                "targets: {} allows {} from {source_name}",
                group.name, rule.port
            );
            let Some(actual) = actual else {
                out.push(Finding::fail(
                    check,
                    format!("security group {} does not exist", group.name),
                    format!("{} creates it", cx.up),
                ));
                continue;
            };
            let wanted = format!("{} from {source_text}", rule.port);
            let present = matches!(actual.attrs.get("ingress"), Some(Value::Text(t)) if items(t).contains(&wanted.as_str()));
            if present {
                out.push(Finding::ok(check));
                continue;
            }
            let consequence = match (role, &rule.source) {
                (SecurityGroupRole::Ecs, _) => format!(
                    "the load balancer cannot reach the tasks on port {}: their targets time out and turn unhealthy (Target.Timeout), clients get 502/503/504",
                    rule.port
                ),
                (SecurityGroupRole::Rds, _) => format!(
                    "the tasks cannot reach PostgreSQL on port {}: the app cannot connect, its tasks fail their health checks or stop",
                    rule.port
                ),
                _ => format!(
                    "clients cannot reach the load balancer on port {}",
                    rule.port
                ),
            };
            out.push(Finding::fail(
                check,
                format!(
                    "{} ({}) has no inbound rule for TCP {} from {source_name}: {consequence}",
                    group.name, actual.physical, rule.port
                ),
                format!(
                    "allow TCP {} from {source_name}{source_physical} in {} ({} restores it)",
                    rule.port, group.name, cx.up
                ),
            ));
        }
    }
    out
}

fn security_groups_attached(cx: &Cx<'_>) -> Finding {
    let check = "targets: security groups attached";
    let mut wrong = Vec::new();
    let mut expect = |id: &str, what: String, role: SecurityGroupRole| {
        if cx.stack.security_groups.get(role).is_none() {
            return;
        }
        if let Some(groups) = cx.attr(id, "security_groups")
            && !items(groups).contains(&sg_id(role).as_str())
        {
            wrong.push(format!("{what} is not in {}", group_name(cx, role)));
        }
    };
    expect(
        "alb",
        format!("load balancer {}", cx.stack.load_balancer.name),
        SecurityGroupRole::Alb,
    );
    for service in &cx.stack.services {
        expect(
            &format!("service/{}", service.name),
            format!("service {}", service.service_name),
            SecurityGroupRole::Ecs,
        );
    }
    expect("db", "the database".to_owned(), SecurityGroupRole::Rds);
    if wrong.is_empty() {
        return Finding::ok(check);
    }
    Finding::fail(
        check,
        format!(
            "{}: the security group chain (ALB-SG → ECS-SG → RDS-SG) does not apply to it",
            wrong.join("; ")
        ),
        format!("{} puts each back in its group", cx.up),
    )
}

fn health_check(cx: &Cx<'_>, service: &Service) -> Finding {
    let tg = format!("tg/{}", service.name);
    let check = format!("targets: health check of {}", service.target_group);
    if cx.get(&tg).is_none() {
        return Finding::fail(
            check,
            format!("target group {} does not exist", service.target_group),
            format!("{} creates it", cx.up),
        );
    }
    let hc = &service.health_check;
    let mut problems = Vec::new();
    let path = cx.attr(&tg, "health_check_path").unwrap_or("");
    if path != hc.path {
        problems.push(format!(
            "{} checks {path:?}, the stack's health check path is {:?}",
            service.target_group, hc.path
        ));
    }
    let matcher = cx.attr(&tg, "matcher").unwrap_or("");
    if !matcher.is_empty() && matcher != hc.matcher {
        problems.push(format!(
            "{} expects HTTP {matcher}, the stack says {}",
            service.target_group, hc.matcher
        ));
    }
    let port = service.port.to_string();
    if let Some(tg_port) = cx.attr(&tg, "port").filter(|p| *p != port) {
        problems.push(format!(
            "{} sends to port {tg_port}, the container listens on {port}",
            service.target_group
        ));
    }
    let taskdef = format!("taskdef/{}", service.name);
    if let Some(td_port) = cx
        .attr(&taskdef, "port")
        .filter(|p| !p.is_empty() && *p != port)
    {
        problems.push(format!(
            "the task definition maps container port {td_port}, the stack says {port}"
        ));
    }
    if problems.is_empty() {
        return Finding::ok(check);
    }
    Finding::fail(
        check,
        format!(
            "{}: targets fail the health check (Target.ResponseCodeMismatch or Target.Timeout) and ECS replaces the tasks",
            problems.join("; ")
        ),
        format!(
            "{} sets the stack's values back (or change health_check in the stack file if the app answers {} elsewhere)",
            cx.up, hc.matcher
        ),
    )
}

/// What a stopped task's reason points at (S2: "look at the stopped reason").
pub fn stopped_reason_advice(reason: &str, service: &str, env: &str) -> String {
    let has = |s: &str| reason.contains(s);
    if has("CannotPullContainer") {
        "the task cannot pull its image: see the pull checks (NAT route, execution role, image tag)"
            .to_owned()
    } else if has("ResourceInitializationError") && (has("secret") || has("ssm")) {
        "the task cannot read its secrets: see the secrets checks".to_owned()
    } else if has("ResourceInitializationError") {
        "the task's resources (log group, secrets, image) could not be prepared: see the pull, logs and secrets checks".to_owned()
    } else if has("ELB health checks") || has("health check") {
        "the task failed its health checks: see the targets checks; the app must answer the health check path on the container port".to_owned()
    } else if has("OutOfMemory") {
        "the container ran out of memory: raise the service's memory in the stack file".to_owned()
    } else if has("Essential container in task exited") {
        format!(
            "the app exited: `berth logs {service} -e {env}` shows why (wrong variables, database not reachable, crash on boot)"
        )
    } else {
        format!("`berth logs {service} -e {env}` and `berth status -e {env}` show more")
    }
}

fn age(now: DateTime<Utc>, since: Option<DateTime<Utc>>) -> Option<Duration> {
    since.and_then(|t| (now - t).to_std().ok())
}

fn minutes(d: Duration) -> String {
    let m = d.as_secs() / 60;
    if m >= 120 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

fn deployments(cx: &Cx<'_>, service: &Service, options: &Options) -> Finding {
    let check = format!("deploy: {}", service.service_name);
    let Some(fact) = cx.facts.services.get(&service.name) else {
        return Finding::warn(
            check,
            format!("service {} does not exist", service.service_name),
            format!("{} creates it once its repository holds an image", cx.up),
        );
    };
    let rollback = format!(
        "`berth rollback {} -e {}` returns to the last completed revision",
        service.name, cx.env
    );
    let mut warning = None;
    for d in &fact.deployments {
        // The newest stopped task of this deployment says what its tasks die of.
        let last_stop = fact
            .stopped
            .iter()
            .filter(|t| t.deployment_id == d.id && t.stopped_reason.is_some())
            .max_by_key(|t| t.stopped_at);
        let stop_text = last_stop
            .and_then(|t| t.stopped_reason.as_deref())
            .map(|r| format!("; last stopped task: {r}"))
            .unwrap_or_default();
        let advice = last_stop
            .and_then(|t| t.stopped_reason.as_deref())
            .map(|r| format!("{}; ", stopped_reason_advice(r, &service.name, &cx.env)))
            .unwrap_or_default();
        let what = format!("deployment {} ({})", d.id, d.task_definition);
        match d.rollout_state {
            Some(RolloutState::Failed) => {
                return Finding::fail(
                    check,
                    format!("{what} failed: {}{stop_text}", d.rollout_state_reason),
                    format!(
                        "{advice}fix the cause, then `berth deploy {} -e {}` again",
                        service.name, cx.env
                    ),
                );
            }
            Some(RolloutState::InProgress) => {
                let running = age(options.now, d.created_at);
                if let Some(running) = running.filter(|a| *a > options.stuck_after) {
                    return Finding::fail(
                        check,
                        format!(
                            "{what} has been in progress for {} (more than {}): {} of {} tasks running, {} failed{stop_text}",
                            minutes(running),
                            minutes(options.stuck_after),
                            d.running_count,
                            d.desired_count,
                            d.failed_tasks
                        ),
                        format!("{advice}{rollback}"),
                    );
                }
                if d.failed_tasks > 0 && warning.is_none() {
                    warning = Some(Finding::warn(
                        check.clone(),
                        format!(
                            "{what} is in progress with {} failed tasks{stop_text}",
                            d.failed_tasks
                        ),
                        format!(
                            "{advice}the circuit breaker stops it if the tasks keep failing; {rollback}"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    warning.unwrap_or_else(|| Finding::ok(check))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use berth_spec::status::DeploymentStatus;
    use berth_spec::status::DeploymentStrategy;

    use super::*;

    fn stack() -> Stack {
        let text = "[stack]\nname = \"demo\"\n[services.web]\nport = 80\n";
        berth_spec::parse(text, "berth.toml", Path::new("/app")).expect("a valid stack")
    }

    fn in_progress(id: &str, minutes: i64, failed: u32) -> DeploymentState {
        DeploymentState {
            id: id.into(),
            status: DeploymentStatus::Primary,
            task_definition: "web:2".into(),
            strategy: DeploymentStrategy::Rolling,
            desired_count: 2,
            running_count: 0,
            pending_count: 2,
            failed_tasks: failed,
            rollout_state: Some(RolloutState::InProgress),
            rollout_state_reason: String::new(),
            created_at: Some(now() - chrono::Duration::minutes(minutes)),
            updated_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn stopped(deployment: &str, minutes_ago: i64, reason: &str) -> TaskState {
        TaskState {
            id: format!("task-{minutes_ago}"),
            task_definition: "web:2".into(),
            deployment_id: deployment.into(),
            last_status: "STOPPED".into(),
            desired_status: "STOPPED".into(),
            health_status: "UNKNOWN".into(),
            target: None,
            created_at: None,
            started_at: None,
            stopped_at: Some(now() - chrono::Duration::minutes(minutes_ago)),
            stop_code: Some("TaskFailedToStart".into()),
            stopped_reason: Some(reason.into()),
            exit_code: None,
        }
    }

    fn deploy_finding(deployments: Vec<DeploymentState>, stopped: Vec<TaskState>) -> Finding {
        let stack = stack();
        let mut facts = Facts::default();
        facts.snapshot.known.environment = "production".into();
        facts.services.insert(
            "web".into(),
            ServiceFact {
                deployments,
                stopped,
            },
        );
        let options = Options {
            now: now(),
            stuck_after: DEFAULT_STUCK_AFTER,
        };
        diagnose(&stack, &facts, &options)
            .into_iter()
            .find(|f| f.check == "deploy: web-service")
            .expect("the deploy check")
    }

    #[test]
    fn a_stuck_deployment_names_what_its_newest_stopped_task_died_of() {
        let f = deploy_finding(
            vec![in_progress("ecs-svc/new", 45, 3)],
            vec![
                stopped("ecs-svc/new", 30, "Essential container in task exited"),
                stopped(
                    "ecs-svc/new",
                    2,
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                ),
                // Another deployment's task says nothing about this one.
                stopped("ecs-svc/old", 1, "Task failed ELB health checks"),
            ],
        );
        assert_eq!(f.status, Status::Fail);
        assert_eq!(
            f.problem,
            "deployment ecs-svc/new (web:2) has been in progress for 45m (more than 30m): 0 of 2 tasks running, 3 failed; last stopped task: CannotPullContainerError: pull image manifest has been retried 5 time(s)"
        );
        assert!(
            f.fix
                .starts_with("the task cannot pull its image: see the pull checks"),
            "{f:?}"
        );
        assert!(
            f.fix.ends_with(
                "`berth rollback web -e production` returns to the last completed revision"
            ),
            "{f:?}"
        );
    }

    #[test]
    fn deployments_by_age_and_failures() {
        let cases = [
            // (minutes in progress, failed tasks, expected status)
            (29, 0, Status::Ok),
            (29, 1, Status::Warn),
            (31, 0, Status::Fail),
        ];
        for (minutes, failed, expected) in cases {
            let f = deploy_finding(vec![in_progress("d", minutes, failed)], Vec::new());
            assert_eq!(f.status, expected, "{minutes}m, {failed} failed: {f:?}");
        }
        let missing = diagnose(&stack(), &Facts::default(), &Options::default())
            .into_iter()
            .find(|f| f.check == "deploy: web-service")
            .expect("the deploy check");
        assert_eq!(missing.status, Status::Warn);
    }

    #[test]
    fn stopped_reasons_point_at_their_checks() {
        let cases = [
            (
                "CannotPullContainerError: pull image manifest has been retried 1 time(s)",
                "pull checks",
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: ssm",
                "secrets checks",
            ),
            (
                "Task failed ELB health checks in (target-group arn)",
                "targets checks",
            ),
            (
                "OutOfMemoryError: Container killed due to memory usage",
                "memory",
            ),
            (
                "Essential container in task exited",
                "`berth logs backend -e production` shows why",
            ),
            (
                "Scaling activity initiated by (deployment x)",
                "berth status",
            ),
        ];
        for (reason, expected) in cases {
            let advice = stopped_reason_advice(reason, "backend", "production");
            assert!(advice.contains(expected), "{reason}: {advice}");
        }
    }

    #[test]
    fn durations_read_in_minutes_or_hours() {
        assert_eq!(minutes(Duration::from_secs(45 * 60 + 59)), "45m");
        assert_eq!(minutes(Duration::from_secs(3 * 3600 + 5 * 60)), "3h05m");
    }
}
