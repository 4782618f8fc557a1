//! The resolved stack: plain data with every default applied.
//!
//! Nothing here borrows from the file or carries spans; validation already happened.
//! Types serialize (for `berth explain`) with durations in the file's own notation.

mod ci;
mod environment;
mod infra;
mod outputs;
mod parameter;
mod service;
mod stack;

pub use ci::GithubCi;
pub use environment::{AwsEnvironment, Environment, EnvironmentKind, LocalEnvironment, Runtime};
pub use infra::{
    Cidr, Database, DatabaseKind, ExecutionRole, Https, Iam, Ingress, IngressSource, LoadBalancer,
    ManagedDatabase, NatGateways, Network, PolicyStatement, Registry, SecurityGroup,
    SecurityGroupRole, SecurityGroups, TaskRole,
};
pub use outputs::{Outputs, RenderError};
pub use parameter::{
    Generator, Parameter, ParameterType, ParameterValue, Reference, Segment, Template,
};
pub use service::{
    Autoscaling, Build, CircuitBreaker, ContainerHealthCheck, Deployment, HealthCheck, Image,
    ImageBuild, Logs, Route, ScalingTarget, Service, Strategy, TrafficWiring,
};
pub use stack::{ListenerRule, RuleTarget, Stack};
