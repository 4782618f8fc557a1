//! The engine's vocabulary: a resource as berth wants it ([`Resource`]) or finds it
//! ([`Actual`]), both described by the same attribute map so that the planner can compare
//! them without knowing any AWS shape.

use std::collections::BTreeMap;
use std::fmt;

use berth_spec::{ManagedDatabase, Parameter, Registry, SecurityGroup, Service};

use crate::scaling::Scaling;

/// A resource's logical identity inside the stack (`vpc`, `subnet/private-2`,
/// `service/backend`): the value of its `berth:resource` tag, stable across runs.
pub type Id = String;

/// What kind of AWS resource, in the order a person reads the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Vpc,
    InternetGateway,
    Subnet,
    NatGateway,
    RouteTable,
    SecurityGroup,
    /// The account's OIDC provider for GitHub Actions' tokens (`[ci.github]`).
    OidcProvider,
    Role,
    Repository,
    LogGroup,
    Parameter,
    DbSubnetGroup,
    Database,
    Cluster,
    LoadBalancer,
    TargetGroup,
    Listener,
    TaskDefinition,
    Service,
    /// A service's scalable target with its target-tracking policy.
    Autoscaling,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vpc => "vpc",
            Kind::InternetGateway => "internet gateway",
            Kind::Subnet => "subnet",
            Kind::NatGateway => "nat gateway",
            Kind::RouteTable => "route table",
            Kind::SecurityGroup => "security group",
            Kind::OidcProvider => "iam oidc provider",
            Kind::Role => "iam role",
            Kind::Repository => "ecr repository",
            Kind::LogGroup => "log group",
            Kind::Parameter => "ssm parameter",
            Kind::DbSubnetGroup => "db subnet group",
            Kind::Database => "rds instance",
            Kind::Cluster => "ecs cluster",
            Kind::LoadBalancer => "load balancer",
            Kind::TargetGroup => "target group",
            Kind::Listener => "listener",
            Kind::TaskDefinition => "task definition",
            Kind::Service => "ecs service",
            Kind::Autoscaling => "autoscaling",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attribute's value as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// A secret: compared by presence only and never shown.
    Secret,
    /// Known once other resources exist (a parameter holding the ALB's URL on an empty
    /// account); shown as the template and never a difference on its own.
    Pending(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => write!(f, "{text:?}"),
            Value::Secret => f.write_str("(secret)"),
            Value::Pending(template) => write!(f, "(known after apply: {template})"),
        }
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

/// Attributes by name. The planner compares only names present on both sides: what AWS
/// does not report (moto omits some service fields) is not a difference.
pub type Attrs = BTreeMap<&'static str, Value>;

/// A resource berth wants, with what the executor needs to create or update it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: Id,
    pub kind: Kind,
    /// The AWS name (or Name tag).
    pub name: String,
    pub attrs: Attrs,
    /// Resources that must exist first.
    pub deps: Vec<Id>,
    pub spec: Spec,
}

/// The typed desired state of one resource, per kind.
#[derive(Debug, Clone)]
pub enum Spec {
    Vpc {
        cidr: String,
    },
    InternetGateway,
    Subnet {
        cidr: String,
        az: String,
        public: bool,
    },
    /// With its Elastic IP, tagged with the gateway's id.
    NatGateway {
        subnet: Id,
    },
    RouteTable {
        /// The default route's target: the internet gateway or a NAT gateway.
        target: Id,
        subnets: Vec<Id>,
    },
    SecurityGroup {
        group: SecurityGroup,
    },
    /// The URL, client ids and thumbprints are GitHub's (`crate::ci`).
    OidcProvider,
    Role {
        trust: String,
        /// What the role is for, as IAM shows it.
        description: &'static str,
        managed: Vec<String>,
        /// The inline policy document, if any.
        policy: Option<String>,
    },
    Repository {
        registry: Registry,
        lifecycle: String,
    },
    LogGroup {
        retention_days: Option<u32>,
    },
    Parameter {
        parameter: Parameter,
    },
    DbSubnetGroup {
        subnets: Vec<Id>,
    },
    Database {
        db: ManagedDatabase,
        name: String,
        port: u16,
        password_parameter: String,
    },
    Cluster,
    LoadBalancer {
        subnets: Vec<Id>,
        idle_timeout_secs: u64,
    },
    TargetGroup {
        service: Box<Service>,
    },
    Listener {
        port: u16,
        /// HTTPS with this certificate, or HTTP.
        certificate: Option<String>,
        default: ListenerDefault,
        /// (priority, path pattern, target group).
        rules: Vec<(u32, String, Id)>,
    },
    TaskDefinition {
        service: Box<Service>,
        image: String,
        /// The container's secrets: variable name → parameter ARN.
        secrets: Vec<(String, String)>,
    },
    Service {
        service: Box<Service>,
    },
    /// The resource's name is the scalable target's resource id.
    Autoscaling {
        /// The service's name in the stack (its target group is `tg/<service>`).
        service: String,
        scaling: Scaling,
    },
}

/// What a listener does with a request no rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerDefault {
    Forward(Id),
    /// A 301 to the same URL over HTTPS on this port (the HTTP listener of a stack that
    /// has HTTPS).
    RedirectHttps(u16),
}

impl fmt::Display for ListenerDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenerDefault::Forward(tg) => write!(f, "forward to {tg}"),
            ListenerDefault::RedirectHttps(port) => write!(f, "redirect 301 to HTTPS:{port}"),
        }
    }
}

/// A resource found in the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    pub id: Id,
    pub kind: Kind,
    pub name: String,
    /// What other calls name it by: an id (`vpc-…`), an ARN or a name.
    pub physical: String,
    pub attrs: Attrs,
}
