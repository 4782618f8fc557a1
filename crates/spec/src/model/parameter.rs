use std::fmt;

use serde::Serialize;

/// `String` or `SecureString` (SSM's StringList is not offered: it has no escaping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ParameterType {
    String,
    SecureString,
}

/// One `[parameters."<name>"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    /// The full SSM name (`/ecs/backend/DB_HOST`).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    pub description: Option<String>,
    pub value: ParameterValue,
}

/// Where a parameter's value comes from. SecureString values are never in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum ParameterValue {
    /// A String's value, with references filled in when the stack's outputs are known.
    Template { template: Template },
    /// Generated once by berth, then kept.
    Generated { generator: Generator },
    /// The managed database's user name (`database.username_parameter`).
    DatabaseUsername,
    /// The managed database's password, generated once (`database.password_parameter`).
    DatabasePassword,
    /// Set by the operator (`berth param put`).
    Operator,
}

/// What berth generates for a `generate = "..."` SecureString.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// 32 random alphanumeric characters.
    Password,
}

/// A stack output a String parameter's value can reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `${database.host}`: the database endpoint's host name.
    DatabaseHost,
    /// `${database.port}`.
    DatabasePort,
    /// `${database.name}`.
    DatabaseName,
    /// `${load_balancer.url}`: `http://<dns name>` (no trailing slash).
    LoadBalancerUrl,
    /// `${load_balancer.dns_name}`.
    LoadBalancerDnsName,
    /// `${param:/other/name}`: another String parameter's resolved value.
    Parameter(String),
}

impl Reference {
    /// Every output reference, in the spelling the file uses.
    pub const OUTPUTS: [&'static str; 5] = [
        "database.host",
        "database.port",
        "database.name",
        "load_balancer.url",
        "load_balancer.dns_name",
    ];

    pub(crate) fn parse(text: &str) -> Option<Reference> {
        Some(match text {
            "database.host" => Reference::DatabaseHost,
            "database.port" => Reference::DatabasePort,
            "database.name" => Reference::DatabaseName,
            "load_balancer.url" => Reference::LoadBalancerUrl,
            "load_balancer.dns_name" => Reference::LoadBalancerDnsName,
            other => Reference::Parameter(other.strip_prefix("param:")?.to_owned()),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::DatabaseHost => f.write_str("database.host"),
            Reference::DatabasePort => f.write_str("database.port"),
            Reference::DatabaseName => f.write_str("database.name"),
            Reference::LoadBalancerUrl => f.write_str("load_balancer.url"),
            Reference::LoadBalancerDnsName => f.write_str("load_balancer.dns_name"),
            Reference::Parameter(name) => write!(f, "param:{name}"),
        }
    }
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Reference(Reference),
}

/// A String parameter's value: literal text with `${...}` references (`$$` is a `$`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub segments: Vec<Segment>,
}

impl Template {
    /// The references, in order of appearance.
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Reference(r) => Some(r),
            Segment::Literal(_) => None,
        })
    }

    /// Fills every reference with `lookup`; the first unknown reference is the error.
    pub fn render<F>(&self, mut lookup: F) -> Result<String, Reference>
    where
        F: FnMut(&Reference) -> Option<String>,
    {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Reference(r) => out.push_str(&lookup(r).ok_or_else(|| r.clone())?),
            }
        }
        Ok(out)
    }
}

/// Written back in the file's notation (`http://${load_balancer.url}/api`).
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => f.write_str(&text.replace('$', "$$"))?,
                Segment::Reference(r) => write!(f, "${{{r}}}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
