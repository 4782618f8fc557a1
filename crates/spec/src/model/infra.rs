use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use crate::duration::serde_duration;

/// An IPv4 network in CIDR notation (`10.0.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`; the address must be the network's first address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not in CIDR notation (like 10.0.0.0/16)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`/{prefix}` is not a prefix length (0 to 32)"))?;
        let cidr = Cidr { addr, prefix };
        if cidr.network() != addr {
            return Err(format!(
                "`{text}` has host bits set; the network is {}/{prefix}",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The first address of the network.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && (u32::from(other.addr) & self.mask()) == u32::from(self.addr)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `index`-th subnet of prefix length `prefix` inside this network.
    pub(crate) fn subnet(self, prefix: u8, index: u32) -> Option<Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let bits = u32::from(prefix - self.prefix);
        if bits < 32 && index >= (1u32 << bits) {
            return None;
        }
        let size = 1u64 << (32 - u32::from(prefix));
        let addr = u64::from(u32::from(self.addr)) + u64::from(index) * size;
        Some(Cidr {
            addr: Ipv4Addr::from(u32::try_from(addr).ok()?),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// NAT gateways for the private subnets' outbound traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NatGateways {
    /// One per Availability Zone (the seed: survives the loss of an AZ).
    PerAz,
    /// One shared gateway (cheaper, one AZ's failure cuts every AZ's egress).
    Single,
    /// No outbound internet from the private subnets.
    None,
}

/// The VPC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    /// The VPC's Name tag (`<stack>-vpc`).
    pub vpc_name: String,
    pub cidr: Cidr,
    pub availability_zones: u8,
    /// One per AZ, in AZ order: the load balancer and the NAT gateways live here.
    pub public_subnets: Vec<Cidr>,
    /// One per AZ, in AZ order: the tasks and the database live here.
    pub private_subnets: Vec<Cidr>,
    pub nat: NatGateways,
}

/// Which of the three chained security groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityGroupRole {
    Alb,
    Ecs,
    Rds,
}

/// Where an ingress rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressSource {
    Cidr(Cidr),
    Group(SecurityGroupRole),
}

/// As the file writes it: a CIDR block (`"0.0.0.0/0"`) or a group (`"alb"`).
impl Serialize for IngressSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IngressSource::Cidr(cidr) => cidr.serialize(s),
            IngressSource::Group(role) => role.serialize(s),
        }
    }
}

/// One inbound TCP rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ingress {
    pub port: u16,
    pub source: IngressSource,
    pub description: String,
}

/// A security group with its inbound rules (outbound: all allowed, as AWS's default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub name: String,
    pub description: String,
    pub ingress: Vec<Ingress>,
}

/// ALB-SG → ECS-SG → RDS-SG, derived from the services and the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroups {
    /// HTTP and HTTPS from anywhere.
    pub alb: SecurityGroup,
    /// Each service port from ALB-SG.
    pub ecs: SecurityGroup,
    /// The database port from ECS-SG; absent without a managed database.
    pub rds: Option<SecurityGroup>,
}

impl SecurityGroups {
    pub fn get(&self, role: SecurityGroupRole) -> Option<&SecurityGroup> {
        match role {
            SecurityGroupRole::Alb => Some(&self.alb),
            SecurityGroupRole::Ecs => Some(&self.ecs),
            SecurityGroupRole::Rds => self.rds.as_ref(),
        }
    }
}

/// One IAM policy statement (Allow only: a task role grants, it never denies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyStatement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// The task execution role: pulls images, writes logs, reads the stack's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionRole {
    pub name: String,
    /// The only parameters it may read: the stack's own, by name.
    pub parameters: Vec<String>,
}

/// A service's task role: what the application code may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRole {
    pub service: String,
    pub name: String,
    pub statements: Vec<PolicyStatement>,
}

/// IAM roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Iam {
    pub execution_role: ExecutionRole,
    /// One per service, in service order.
    pub task_roles: Vec<TaskRole>,
}

impl Iam {
    pub fn task_role(&self, service: &str) -> Option<&TaskRole> {
        self.task_roles.iter().find(|r| r.service == service)
    }
}

/// One image repository (ECR, or the local registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registry {
    pub name: String,
    pub service: String,
    pub scan_on_push: bool,
    /// `true`: a tag, once pushed, cannot be moved (ECR's IMMUTABLE).
    pub immutable_tags: bool,
    /// Lifecycle: keep the last N images.
    pub keep_last: u32,
}

/// The load balancer (the ALB on AWS, the embedded balancer locally).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadBalancer {
    pub name: String,
    pub http_port: u16,
    pub https: Option<Https>,
    #[serde(with = "serde_duration")]
    pub idle_timeout: Duration,
}

/// The HTTPS listener (AWS only; the embedded balancer speaks HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Https {
    pub port: u16,
    pub certificate_arn: String,
    /// Whether the HTTP listener answers every request with a 301 to HTTPS.
    pub redirect_http: bool,
}

/// The database the services use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Database {
    /// Name of the database inside the server (`fileanalyzer`).
    pub name: String,
    pub port: u16,
    /// The SecureString parameter that holds the user name (filled by berth).
    pub username_parameter: Option<String>,
    /// The SecureString parameter that holds the password (generated once by berth).
    pub password_parameter: Option<String>,
    #[serde(flatten)]
    pub kind: DatabaseKind,
}

/// Managed by berth (RDS, or a local PostgreSQL), or somebody else's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum DatabaseKind {
    Managed(ManagedDatabase),
    /// An existing server reached through this URL (its credentials are not in the file).
    External {
        url: String,
    },
}

/// An RDS PostgreSQL instance (locally: a PostgreSQL server of the same major version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagedDatabase {
    pub identifier: String,
    pub engine: String,
    pub version: String,
    /// The master user name.
    pub username: String,
    pub instance_class: String,
    /// GiB.
    pub allocated_storage: u32,
    pub storage_type: String,
    pub backup_retention_days: u32,
    pub multi_az: bool,
    pub storage_encrypted: bool,
    pub deletion_protection: bool,
    pub subnet_group: String,
}

impl Database {
    pub fn managed(&self) -> Option<&ManagedDatabase> {
        match &self.kind {
            DatabaseKind::Managed(m) => Some(m),
            DatabaseKind::External { .. } => None,
        }
    }
}
