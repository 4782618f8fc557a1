//! The resources a stack asks for, with their attributes and dependencies (pure).
//!
//! Every name and value comes from the [`Stack`]; what only the account can tell (its id,
//! the Availability Zones, the images in the repositories, the outputs of resources that
//! exist) comes in through [`Known`], which discovery fills in.

use std::collections::BTreeMap;

use berth_spec::{
    IngressSource, NatGateways, Outputs, ParameterType, ParameterValue, Reference, Service, Stack,
    Template,
};
use serde_json::json;

use crate::resource::{Attrs, Id, Kind, ListenerDefault, Resource, Spec, Value};
use crate::scaling::{self, Metric, Scaling};

/// The managed policy every execution role carries (pull from ECR, write to CloudWatch).
pub const EXECUTION_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";

/// The managed policy of the role ECS assumes to shift a service's traffic (move its
/// listener rules, register its tasks in either target group).
pub const INFRASTRUCTURE_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers";

/// The logical id of the infrastructure role (one per stack, for every traffic-shifting
/// service).
pub const INFRASTRUCTURE_ROLE: &str = "role/ecs-infrastructure";

/// The infrastructure role's name.
pub fn infrastructure_role_name(stack: &Stack) -> String {
    let name = format!("{}-ecs-infrastructure", stack.name);
    name.chars().take(64).collect()
}

/// The logical id of a service's alternate (green) target group.
pub fn alternate_tg_id(service: &str) -> Id {
    format!("tg/{service}/alternate")
}

/// The alternate group of the service whose target group is `tg` (`tg/<service>`), when
/// that service shifts traffic: the group ECS may have moved its rules to.
pub fn shifting_alternate(stack: &Stack, tg: &str) -> Option<Id> {
    let name = tg.strip_prefix("tg/")?;
    shifting(stack)
        .any(|(s, _)| s.name == name)
        .then(|| alternate_tg_id(name))
}

/// The logical id of a service's test listener.
pub fn test_listener_id(service: &str) -> Id {
    format!("listener/test/{service}")
}

/// The services that shift traffic (blue/green, canary, linear), each with its wiring.
fn shifting(stack: &Stack) -> impl Iterator<Item = (&Service, &berth_spec::TrafficWiring)> {
    stack.services.iter().filter_map(|s| {
        let traffic = s.deployment.traffic.as_ref()?;
        crate::strategy::shifts(&s.deployment.strategy).then_some((s, traffic))
    })
}

/// What the planner needs from the account besides the stack.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The environment being planned (`up -e NAME`): CI's identity belongs to one.
    pub environment: String,
    pub region: String,
    pub account_id: String,
    /// The Region's Availability Zones, in order; the stack uses the first N.
    pub azs: Vec<String>,
    /// Per service: the image its task definition runs (the current one when the task
    /// definition exists, else the newest in its repository); absent when there is none.
    pub images: BTreeMap<String, String>,
    /// The outputs of resources that already exist.
    pub outputs: Outputs,
    /// The account has a GitHub OIDC provider that is not this stack's (another stack's,
    /// or made by hand): the CI roles trust it, and berth neither changes nor deletes it.
    pub shared_oidc_provider: bool,
}

/// The desired resources, and the services left out because their repository is empty.
#[derive(Debug, Clone)]
pub struct Desired {
    pub resources: Vec<Resource>,
    /// (service, repository) pairs waiting for a first image.
    pub waiting_for_image: Vec<(String, String)>,
}

impl Desired {
    /// The desired resource `id` (`service/backend`, `taskdef/backend`).
    pub(crate) fn resource(&self, id: &str) -> crate::error::Result<&Resource> {
        self.resources
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| crate::error::Error::Other(format!("{id} is not a desired resource")))
    }
}

struct Builder(Vec<Resource>);

impl Builder {
    fn add(
        &mut self,
        id: impl Into<Id>,
        kind: Kind,
        name: impl Into<String>,
        spec: Spec,
    ) -> &mut Resource {
        let index = self.0.len();
        self.0.push(Resource {
            id: id.into(),
            kind,
            name: name.into(),
            attrs: Attrs::new(),
            deps: Vec::new(),
            spec,
        });
        &mut self.0[index]
    }
}

impl Resource {
    fn attr(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Self {
        self.attrs.insert(name, value.into());
        self
    }

    fn dep(&mut self, id: impl Into<Id>) -> &mut Self {
        let id = id.into();
        if !self.deps.contains(&id) {
            self.deps.push(id);
        }
        self
    }
}

fn subnet_id(public: bool, index: usize) -> Id {
    format!(
        "subnet/{}-{}",
        if public { "public" } else { "private" },
        index + 1
    )
}

/// The logical id of an SSM parameter: `param/ecs/db/host` for `/ecs/db/host` (its name
/// without the leading slash, as in its ARN; not `param//ecs/...`).
pub fn parameter_id(name: &str) -> Id {
    format!("param/{}", name.trim_start_matches('/'))
}

/// The ARN of an SSM parameter of the stack.
pub fn parameter_arn(known: &Known, name: &str) -> String {
    let slash = if name.starts_with('/') { "" } else { "/" };
    format!(
        "arn:aws:ssm:{}:{}:parameter{slash}{name}",
        known.region, known.account_id
    )
}

/// The trust policy of every ECS task role.
pub fn task_trust_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string()
}

/// ECR's lifecycle policy that keeps the last `n` images.
pub fn lifecycle_policy(n: u32) -> String {
    json!({"rules": [{
        "rulePriority": 1,
        "description": format!("keep the last {n} images"),
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": n},
        "action": {"type": "expire"}
    }]})
    .to_string()
}

fn join<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every resource of `stack`, in an order where dependencies come first.
pub fn desired(stack: &Stack, known: &Known) -> Desired {
    let mut b = Builder(Vec::new());
    network(stack, known, &mut b);
    security_groups(stack, &mut b);
    iam(stack, known, &mut b);
    ci_identity(stack, known, &mut b);
    for registry in &stack.registries {
        b.add(
            format!("repo/{}", registry.service),
            Kind::Repository,
            &registry.name,
            Spec::Repository {
                registry: registry.clone(),
                lifecycle: lifecycle_policy(registry.keep_last),
            },
        )
        .attr("scan_on_push", registry.scan_on_push.to_string())
        .attr(
            "tag_mutability",
            if registry.immutable_tags {
                "IMMUTABLE"
            } else {
                "MUTABLE"
            },
        )
        .attr("keep_last", registry.keep_last.to_string());
    }
    for service in &stack.services {
        let logs = &service.logs;
        let r = b.add(
            format!("logs/{}", service.name),
            Kind::LogGroup,
            &logs.group,
            Spec::LogGroup {
                retention_days: logs.retention_days,
            },
        );
        r.attr(
            "retention_days",
            logs.retention_days
                .map_or("never expire".into(), |d| d.to_string()),
        );
    }
    database(stack, &mut b);
    parameters(stack, known, &mut b);
    b.add("cluster", Kind::Cluster, &stack.cluster, Spec::Cluster);
    load_balancer(stack, &mut b);
    let waiting_for_image = services(stack, known, &mut b);
    Desired {
        resources: b.0,
        waiting_for_image,
    }
}

fn network(stack: &Stack, known: &Known, b: &mut Builder) {
    let net = &stack.network;
    b.add(
        "vpc",
        Kind::Vpc,
        &net.vpc_name,
        Spec::Vpc {
            cidr: net.cidr.to_string(),
        },
    )
    .attr("cidr", net.cidr.to_string())
    .attr("dns_hostnames", "true")
    .attr("dns_support", "true");
    b.add(
        "igw",
        Kind::InternetGateway,
        format!("{}-igw", stack.name),
        Spec::InternetGateway,
    )
    .attr("vpc", "vpc")
    .dep("vpc");
    let az = |i: usize| {
        known
            .azs
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("{}{}", known.region, char::from(b'a' + i as u8)))
    };
    for (public, cidrs) in [(true, &net.public_subnets), (false, &net.private_subnets)] {
        for (i, cidr) in cidrs.iter().enumerate() {
            let kind = if public { "public" } else { "private" };
            b.add(
                subnet_id(public, i),
                Kind::Subnet,
                format!("{}-{kind}-{}", stack.name, az(i)),
                Spec::Subnet {
                    cidr: cidr.to_string(),
                    az: az(i),
                    public,
                },
            )
            .attr("cidr", cidr.to_string())
            .attr("availability_zone", az(i))
            .dep("vpc");
        }
    }
    let nats = match net.nat {
        NatGateways::PerAz => net.public_subnets.len(),
        NatGateways::Single => 1,
        NatGateways::None => 0,
    };
    for i in 0..nats {
        b.add(
            format!("nat/{}", i + 1),
            Kind::NatGateway,
            format!("{}-nat-{}", stack.name, az(i)),
            Spec::NatGateway {
                subnet: subnet_id(true, i),
            },
        )
        .attr("subnet", subnet_id(true, i))
        .dep(subnet_id(true, i))
        // A NAT gateway only routes once the VPC reaches the internet.
        .dep("igw");
    }
    let public: Vec<Id> = (0..net.public_subnets.len())
        .map(|i| subnet_id(true, i))
        .collect();
    let r = b.add(
        "rtb/public",
        Kind::RouteTable,
        format!("{}-public", stack.name),
        Spec::RouteTable {
            target: "igw".into(),
            subnets: public.clone(),
        },
    );
    r.attr("default_route", "igw")
        .attr("subnets", join(&public))
        .dep("vpc")
        .dep("igw");
    for s in &public {
        r.dep(s.clone());
    }
    if nats > 0 {
        for i in 0..net.private_subnets.len() {
            let nat = format!("nat/{}", i.min(nats - 1) + 1);
            let subnet = subnet_id(false, i);
            b.add(
                format!("rtb/private-{}", i + 1),
                Kind::RouteTable,
                format!("{}-private-{}", stack.name, az(i)),
                Spec::RouteTable {
                    target: nat.clone(),
                    subnets: vec![subnet.clone()],
                },
            )
            .attr("default_route", nat.clone())
            .attr("subnets", subnet.clone())
            .dep("vpc")
            .dep(nat)
            .dep(subnet);
        }
    }
}

pub(crate) fn sg_id(role: berth_spec::SecurityGroupRole) -> Id {
    match role {
        berth_spec::SecurityGroupRole::Alb => "sg/alb",
        berth_spec::SecurityGroupRole::Ecs => "sg/ecs",
        berth_spec::SecurityGroupRole::Rds => "sg/rds",
    }
    .into()
}

fn security_groups(stack: &Stack, b: &mut Builder) {
    use berth_spec::SecurityGroupRole as R;
    for role in [R::Alb, R::Ecs, R::Rds] {
        let Some(group) = stack.security_groups.get(role) else {
            continue;
        };
        let with_tests;
        let group = if role == R::Alb {
            with_tests = with_test_ports(stack, group);
            &with_tests
        } else {
            group
        };
        let r = b.add(
            sg_id(role),
            Kind::SecurityGroup,
            &group.name,
            Spec::SecurityGroup {
                group: group.clone(),
            },
        );
        r.attr("description", group.description.as_str())
            .attr("ingress", join(ingress_rules(group)))
            .dep("vpc");
        for rule in &group.ingress {
            if let IngressSource::Group(source) = rule.source {
                r.dep(sg_id(source));
            }
        }
    }
}

/// The ALB's group with each test listener's port open to whom its HTTP port is open.
fn with_test_ports(stack: &Stack, group: &berth_spec::SecurityGroup) -> berth_spec::SecurityGroup {
    let mut group = group.clone();
    let sources: Vec<IngressSource> = group
        .ingress
        .iter()
        .filter(|i| i.port == 80)
        .map(|i| i.source.clone())
        .collect();
    for (service, traffic) in shifting(stack) {
        let Some(port) = traffic.test_listener_port else {
            continue;
        };
        for source in &sources {
            group.ingress.push(berth_spec::Ingress {
                port,
                source: source.clone(),
                description: format!("{} test listener", service.name),
            });
        }
    }
    group
}

/// A group's inbound rules as the plan shows them (`3001 from sg/alb`), sorted.
pub fn ingress_rules(group: &berth_spec::SecurityGroup) -> Vec<String> {
    let mut rules: Vec<String> = group
        .ingress
        .iter()
        .map(|rule| match &rule.source {
            IngressSource::Cidr(cidr) => format!("{} from {cidr}", rule.port),
            IngressSource::Group(role) => format!("{} from {}", rule.port, sg_id(*role)),
        })
        .collect();
    rules.sort();
    rules
}

fn iam(stack: &Stack, known: &Known, b: &mut Builder) {
    let exec = &stack.iam.execution_role;
    let arns: Vec<String> = exec
        .parameters
        .iter()
        .map(|p| parameter_arn(known, p))
        .collect();
    // Read access limited to the stack's own parameters, by ARN: never `*`.
    let policy = (!arns.is_empty()).then(|| {
        json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": arns}]
        })
        .to_string()
    });
    role(
        b,
        "role/execution".into(),
        &exec.name,
        vec![EXECUTION_POLICY_ARN.into()],
        policy,
    );
    if shifting(stack).next().is_some() {
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "ecs.amazonaws.com"},
                "Action": "sts:AssumeRole"
            }]
        })
        .to_string();
        let managed = vec![INFRASTRUCTURE_POLICY_ARN.to_owned()];
        b.add(
            INFRASTRUCTURE_ROLE,
            Kind::Role,
            infrastructure_role_name(stack),
            Spec::Role {
                trust: trust.clone(),
                description: "berth: ECS shifts blue/green, canary and linear traffic",
                managed: managed.clone(),
                policy: None,
            },
        )
        .attr("trust", trust)
        .attr("managed_policies", join(&managed))
        .attr("inline_policy", "");
    }
    for task in &stack.iam.task_roles {
        let statements: Vec<_> = task
            .statements
            .iter()
            .map(|s| json!({"Effect": "Allow", "Action": s.actions, "Resource": s.resources}))
            .collect();
        let policy = (!statements.is_empty())
            .then(|| json!({"Version": "2012-10-17", "Statement": statements}).to_string());
        role(
            b,
            format!("role/task/{}", task.service),
            &task.name,
            Vec::new(),
            policy,
        );
    }
}

fn role(b: &mut Builder, id: Id, name: &str, managed: Vec<String>, policy: Option<String>) {
    let r = b.add(
        id,
        Kind::Role,
        name,
        Spec::Role {
            trust: task_trust_policy(),
            description: "berth: ECS task role",
            managed: managed.clone(),
            policy: policy.clone(),
        },
    );
    r.attr("trust", "ecs-tasks.amazonaws.com")
        .attr("managed_policies", join(&managed))
        .attr("inline_policy", policy.unwrap_or_default());
}

/// `[ci.github]`: GitHub's OIDC provider (unless the account has one that is not this
/// stack's) and the roles the workflows assume, each trusting one token subject.
fn ci_identity(stack: &Stack, known: &Known, b: &mut Builder) {
    let Some((ci, repository)) = crate::ci::enabled(stack, known) else {
        return;
    };
    if !known.shared_oidc_provider {
        b.add(
            "oidc/github",
            Kind::OidcProvider,
            crate::ci::GITHUB_OIDC_HOST,
            Spec::OidcProvider,
        )
        .attr("url", crate::ci::GITHUB_OIDC_HOST)
        .attr("audiences", crate::ci::GITHUB_OIDC_AUDIENCE);
    }
    let roles = [
        (
            "role/ci/deploy",
            &ci.deploy_role,
            crate::ci::push_subject(repository, &ci.branch),
            crate::ci::deploy_policy(stack, known, ci),
            "berth: GitHub Actions deploys (berth build --push, berth deploy)",
        ),
        (
            "role/ci/plan",
            &ci.plan_role,
            crate::ci::pull_request_subject(repository),
            crate::ci::plan_policy(stack, known, ci),
            "berth: GitHub Actions plans pull requests (berth plan, read-only)",
        ),
    ];
    for (id, name, subject, policy, description) in roles {
        let trust = crate::ci::trust_policy(known, &subject);
        let r = b.add(
            id,
            Kind::Role,
            name.as_str(),
            Spec::Role {
                trust: trust.clone(),
                description,
                managed: Vec::new(),
                policy: Some(policy.clone()),
            },
        );
        r.attr("trust", trust)
            .attr("managed_policies", "")
            .attr("inline_policy", policy);
        if !known.shared_oidc_provider {
            r.dep("oidc/github");
        }
    }
}

fn database(stack: &Stack, b: &mut Builder) {
    let Some(database) = &stack.database else {
        return;
    };
    let Some(db) = database.managed() else {
        return;
    };
    let private: Vec<Id> = (0..stack.network.private_subnets.len())
        .map(|i| subnet_id(false, i))
        .collect();
    let r = b.add(
        "db-subnet-group",
        Kind::DbSubnetGroup,
        &db.subnet_group,
        Spec::DbSubnetGroup {
            subnets: private.clone(),
        },
    );
    r.attr("subnets", join(&private));
    for s in &private {
        r.dep(s.clone());
    }
    let password_parameter = database.password_parameter.clone().unwrap_or_default();
    let r = b.add(
        "db",
        Kind::Database,
        &db.identifier,
        Spec::Database {
            db: db.clone(),
            name: database.name.clone(),
            port: database.port,
            password_parameter: password_parameter.clone(),
        },
    );
    r.attr("engine", db.engine.as_str())
        .attr("engine_version", db.version.as_str())
        .attr("instance_class", db.instance_class.as_str())
        .attr("allocated_storage", db.allocated_storage.to_string())
        .attr("storage_type", db.storage_type.as_str())
        .attr(
            "backup_retention_days",
            db.backup_retention_days.to_string(),
        )
        .attr("multi_az", db.multi_az.to_string())
        .attr("storage_encrypted", db.storage_encrypted.to_string())
        .attr("publicly_accessible", "false")
        .attr("db_name", database.name.as_str())
        .attr("port", database.port.to_string())
        .attr("master_username", db.username.as_str())
        .attr("master_password", Value::Secret)
        .attr("security_groups", "sg/rds")
        .dep("db-subnet-group")
        .dep("sg/rds");
    if !password_parameter.is_empty() {
        r.dep(parameter_id(&password_parameter));
    }
}

fn parameters(stack: &Stack, known: &Known, b: &mut Builder) {
    let managed_db = stack.database.as_ref().and_then(|d| d.managed()).is_some();
    for parameter in &stack.parameters {
        // The operator sets these (`berth param put`): berth neither creates nor shows them.
        if matches!(parameter.value, ParameterValue::Operator) {
            continue;
        }
        let r = b.add(
            parameter_id(&parameter.name),
            Kind::Parameter,
            &parameter.name,
            Spec::Parameter {
                parameter: parameter.clone(),
            },
        );
        r.attr(
            "type",
            match parameter.kind {
                ParameterType::String => "String",
                ParameterType::SecureString => "SecureString",
            },
        );
        if let Some(description) = &parameter.description {
            r.attr("description", description.as_str());
        }
        let value = match &parameter.value {
            ParameterValue::Template { template } => {
                // Outputs of resources not created yet make the value pending, and the
                // parameter waits for them.
                for reference in template.references() {
                    match reference {
                        berth_spec::Reference::DatabaseHost
                        | berth_spec::Reference::DatabasePort
                            if managed_db =>
                        {
                            r.dep("db");
                        }
                        berth_spec::Reference::LoadBalancerUrl
                        | berth_spec::Reference::LoadBalancerDnsName => {
                            r.dep("alb");
                        }
                        berth_spec::Reference::Parameter(name) => {
                            r.dep(parameter_id(name));
                        }
                        _ => {}
                    }
                }
                match render(stack, &known.outputs, template) {
                    Some(value) => Value::Text(value),
                    None => Value::Pending(template.to_string()),
                }
            }
            _ => Value::Secret,
        };
        r.attr("value", value);
    }
}

/// A String parameter's value with the outputs known so far; `None` while one is missing.
pub(crate) fn render(stack: &Stack, outputs: &Outputs, template: &Template) -> Option<String> {
    // The database's name is in the file: known before anything exists.
    let mut outputs = outputs.clone();
    if outputs.database_name.is_none() {
        outputs.database_name = stack.database.as_ref().map(|d| d.name.clone());
    }
    template
        .render(|reference| match reference {
            Reference::Parameter(name) => match &stack.parameter(name)?.value {
                ParameterValue::Template { template } => render(stack, &outputs, template),
                _ => None,
            },
            other => outputs.get(other),
        })
        .ok()
}

fn load_balancer(stack: &Stack, b: &mut Builder) {
    let lb = &stack.load_balancer;
    let public: Vec<Id> = (0..stack.network.public_subnets.len())
        .map(|i| subnet_id(true, i))
        .collect();
    let r = b.add(
        "alb",
        Kind::LoadBalancer,
        &lb.name,
        Spec::LoadBalancer {
            subnets: public.clone(),
            idle_timeout_secs: lb.idle_timeout.as_secs(),
        },
    );
    r.attr("scheme", "internet-facing")
        .attr("type", "application")
        .attr("subnets", join(&public))
        .attr("security_groups", "sg/alb")
        .attr("idle_timeout", lb.idle_timeout.as_secs().to_string())
        .dep("sg/alb")
        .dep("rtb/public");
    for s in &public {
        r.dep(s.clone());
    }
    for service in &stack.services {
        target_group(
            b,
            format!("tg/{}", service.name),
            &service.target_group,
            service,
        );
    }
    for (service, _) in shifting(stack) {
        target_group(
            b,
            alternate_tg_id(&service.name),
            &service.alternate_target_group(),
            service,
        );
    }
    let Some(default) = stack.default_service() else {
        return;
    };
    let mut rules: Vec<(u32, String, Id)> = stack
        .listener_rules()
        .iter()
        .map(|r| {
            (
                r.priority,
                r.path.to_owned(),
                format!("tg/{}", r.target.service),
            )
        })
        .collect();
    // ECS shifts traffic by moving a listener rule: the default service's traffic, which
    // the default action carries, needs one when it shifts.
    if default.routes.is_empty() && shifting(stack).any(|(s, _)| s.name == default.name) {
        rules.push((
            crate::strategy::CATCH_ALL_PRIORITY,
            "/*".to_owned(),
            format!("tg/{}", default.name),
        ));
    }
    let forward = ListenerDefault::Forward(format!("tg/{}", default.name));
    // With HTTPS, the HTTPS listener routes and, unless told otherwise, the HTTP one only
    // redirects to it.
    let http_redirects = lb.https.as_ref().is_some_and(|h| h.redirect_http);
    let http = match &lb.https {
        Some(h) if h.redirect_http => ListenerDefault::RedirectHttps(h.port),
        _ => forward.clone(),
    };
    let http_rules = if http_redirects {
        Vec::new()
    } else {
        rules.clone()
    };
    listener(
        stack,
        b,
        "listener/http",
        lb.http_port,
        None,
        http,
        http_rules,
    );
    if let Some(h) = &lb.https {
        listener(
            stack,
            b,
            "listener/https",
            h.port,
            Some(h.certificate_arn.clone()),
            forward,
            rules,
        );
    }
    // A test listener reaches a service through one rule, which ECS moves to green at
    // TEST_TRAFFIC_SHIFT (S3.8); until then it serves blue, as production does.
    for (service, traffic) in shifting(stack) {
        let Some(port) = traffic.test_listener_port else {
            continue;
        };
        let tg = format!("tg/{}", service.name);
        listener(
            stack,
            b,
            &test_listener_id(&service.name),
            port,
            None,
            ListenerDefault::Forward(tg.clone()),
            vec![(crate::strategy::TEST_RULE_PRIORITY, "/*".to_owned(), tg)],
        );
    }
}

/// A service's target group (its own or its alternate: the same settings, S3.7).
fn target_group(b: &mut Builder, id: Id, name: &str, service: &Service) {
    let hc = &service.health_check;
    b.add(
        id,
        Kind::TargetGroup,
        name,
        Spec::TargetGroup {
            service: Box::new(service.clone()),
        },
    )
    .attr("protocol", "HTTP")
    .attr("port", service.port.to_string())
    .attr("target_type", "ip")
    .attr("health_check_path", hc.path.as_str())
    .attr("health_check_interval", hc.interval.as_secs().to_string())
    .attr("health_check_timeout", hc.timeout.as_secs().to_string())
    .attr("healthy_threshold", hc.healthy_threshold.to_string())
    .attr("unhealthy_threshold", hc.unhealthy_threshold.to_string())
    .attr("matcher", hc.matcher.as_str())
    .attr(
        "deregistration_delay",
        service.deregistration_delay.as_secs().to_string(),
    )
    .dep("vpc");
}

fn listener(
    stack: &Stack,
    b: &mut Builder,
    id: &str,
    port: u16,
    certificate: Option<String>,
    default: ListenerDefault,
    rules: Vec<(u32, String, Id)>,
) {
    let lb = &stack.load_balancer;
    let r = b.add(
        id,
        Kind::Listener,
        format!("{}:{port}", lb.name),
        Spec::Listener {
            port,
            certificate: certificate.clone(),
            default: default.clone(),
            rules: rules.clone(),
        },
    );
    r.attr("port", port.to_string())
        .attr(
            "protocol",
            if certificate.is_some() {
                "HTTPS"
            } else {
                "HTTP"
            },
        )
        .attr("default_action", default.to_string())
        .attr("rules", rules_text(&rules))
        .dep("alb");
    if let Some(arn) = certificate {
        r.attr("certificate", arn);
    }
    for service in &stack.services {
        r.dep(format!("tg/{}", service.name));
    }
    // ECS moves a traffic-shifting service's rules to its alternate group: the listener
    // goes first on `down`.
    for (service, _) in shifting(stack) {
        r.dep(alternate_tg_id(&service.name));
    }
}

/// Listener rules as the plan shows them (`100 /api/* -> tg/backend`), sorted as text.
pub fn rules_text(rules: &[(u32, String, Id)]) -> String {
    let mut rules: Vec<String> = rules
        .iter()
        .map(|(p, path, tg)| format!("{p} {path} -> {tg}"))
        .collect();
    rules.sort();
    join(rules)
}

fn services(stack: &Stack, known: &Known, b: &mut Builder) -> Vec<(String, String)> {
    let mut waiting = Vec::new();
    for service in &stack.services {
        let Some(image) = known.images.get(&service.name) else {
            waiting.push((service.name.clone(), service.repository.clone()));
            continue;
        };
        let secrets: Vec<(String, String)> = service
            .secrets
            .iter()
            .map(|(var, name)| (var.clone(), parameter_arn(known, name)))
            .collect();
        let task_role = stack.iam.task_role(&service.name).map(|r| r.name.clone());
        let r = b.add(
            format!("taskdef/{}", service.name),
            Kind::TaskDefinition,
            &service.task_family,
            Spec::TaskDefinition {
                service: Box::new(service.clone()),
                image: image.clone(),
                secrets: secrets.clone(),
            },
        );
        r.attr("requires", "FARGATE")
            .attr("network_mode", "awsvpc")
            .attr("cpu", service.cpu.to_string())
            .attr("memory", service.memory.to_string())
            .attr("container", service.container_name.as_str())
            .attr("image", image.as_str())
            .attr("port", service.port.to_string())
            .attr(
                "environment",
                join(service.environment.iter().map(|(k, v)| format!("{k}={v}"))),
            )
            .attr(
                "secrets",
                join(secrets.iter().map(|(k, arn)| format!("{k}={arn}"))),
            )
            .attr("log_group", service.logs.group.as_str())
            .attr("execution_role", stack.iam.execution_role.name.as_str())
            .attr("task_role", task_role.unwrap_or_default())
            .dep("role/execution")
            .dep(format!("logs/{}", service.name));
        if stack.iam.task_role(&service.name).is_some() {
            r.dep(format!("role/task/{}", service.name));
        }
        for name in service.secrets.values() {
            if stack
                .parameter(name)
                .is_some_and(|p| !matches!(p.value, ParameterValue::Operator))
            {
                r.dep(parameter_id(name));
            }
        }
        let d = &service.deployment;
        let private: Vec<Id> = (0..stack.network.private_subnets.len())
            .map(|i| subnet_id(false, i))
            .collect();
        let shifts = crate::strategy::shifts(&d.strategy) && d.traffic.is_some();
        // A traffic-shifting service is bound to both groups, which swap roles at each
        // deployment: the pair is what does not change.
        let target_groups = if shifts {
            join([
                format!("tg/{}", service.name),
                alternate_tg_id(&service.name),
            ])
        } else {
            format!("tg/{}", service.name)
        };
        let r = b.add(
            format!("service/{}", service.name),
            Kind::Service,
            &service.service_name,
            Spec::Service {
                service: Box::new(service.clone()),
            },
        );
        r.attr("launch_type", "FARGATE")
            .attr("task_definition", service.task_family.as_str())
            .attr("subnets", join(&private))
            .attr("security_groups", "sg/ecs")
            .attr("assign_public_ip", "DISABLED")
            .attr("target_group", target_groups)
            .attr(
                "strategy",
                crate::strategy::strategy_text(&crate::strategy::deployment_configuration(
                    d,
                    &d.strategy,
                )),
            )
            .attr(
                "minimum_healthy_percent",
                d.minimum_healthy_percent.to_string(),
            )
            .attr("maximum_percent", d.maximum_percent.to_string())
            .attr(
                "circuit_breaker",
                format!(
                    "enable={} rollback={}",
                    d.circuit_breaker.enable, d.circuit_breaker.rollback
                ),
            )
            .attr(
                "health_check_grace_period",
                d.health_check_grace_period.as_secs().to_string(),
            )
            .dep("cluster")
            .dep(format!("taskdef/{}", service.name))
            .dep("listener/http")
            .dep("sg/ecs");
        if stack.load_balancer.https.is_some() {
            r.dep("listener/https");
        }
        if shifts {
            r.dep(alternate_tg_id(&service.name))
                .dep(INFRASTRUCTURE_ROLE)
                .dep("sg/alb");
            if d.traffic
                .as_ref()
                .is_some_and(|t| t.test_listener_port.is_some())
            {
                r.dep(test_listener_id(&service.name));
            }
        }
        for s in &private {
            r.dep(s.clone());
        }
        // Under autoscaling the desired count is AWS's to move: it is set at creation only
        // and never a difference.
        if service.autoscaling.is_none() {
            r.attr("desired_count", service.desired_count.to_string());
        }
        let route_tables: Vec<Id> = (0..stack.network.private_subnets.len())
            .map(|rtb| format!("rtb/private-{}", rtb + 1))
            .filter(|id| b.0.iter().any(|x| &x.id == id))
            .collect();
        if let Some(service_resource) = b.0.last_mut() {
            for id in route_tables {
                service_resource.dep(id);
            }
        }
        if let Some(a) = &service.autoscaling {
            autoscaling(stack, service, &Scaling::from_spec(a), b);
        }
    }
    waiting
}

/// A service's scalable target and target-tracking policy.
fn autoscaling(stack: &Stack, service: &Service, scaling: &Scaling, b: &mut Builder) {
    let r = b.add(
        format!("autoscaling/{}", service.name),
        Kind::Autoscaling,
        scaling::resource_id(&stack.cluster, &service.service_name),
        Spec::Autoscaling {
            service: service.name.clone(),
            scaling: scaling.clone(),
        },
    );
    r.attr("min", scaling.min.to_string())
        .attr("max", scaling.max.to_string())
        .attr("metric", scaling.metric.as_str())
        .attr("target", scaling::target_text(scaling.target))
        .attr(
            "scale_in_cooldown",
            scaling.scale_in_cooldown_secs.to_string(),
        )
        .attr(
            "scale_out_cooldown",
            scaling.scale_out_cooldown_secs.to_string(),
        )
        .dep(format!("service/{}", service.name));
    if scaling.metric == Metric::Requests {
        r.dep("alb").dep(format!("tg/{}", service.name));
    }
}
