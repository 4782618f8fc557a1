use std::path::PathBuf;

use serde::Serialize;

use super::{
    Database, Environment, GithubCi, HealthCheck, Iam, LoadBalancer, Network, Parameter, Registry,
    SecurityGroups, Service,
};

/// The whole system, validated, with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stack {
    /// The prefix of every resource name berth derives (`ecs-production`).
    pub name: String,
    /// The ECS cluster (`<name>-cluster`).
    pub cluster: String,
    /// The directory of the stack file; relative paths in the file are relative to it.
    pub root: PathBuf,
    /// In file order; there is always a `local` environment.
    pub environments: Vec<Environment>,
    pub network: Network,
    pub security_groups: SecurityGroups,
    pub iam: Iam,
    /// One per service, in service order.
    pub registries: Vec<Registry>,
    pub database: Option<Database>,
    pub load_balancer: LoadBalancer,
    /// In file order.
    pub services: Vec<Service>,
    /// In file order.
    pub parameters: Vec<Parameter>,
    /// `[ci.github]`, when the stack deploys from GitHub Actions.
    pub ci: Option<GithubCi>,
}

/// Where a listener rule forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleTarget<'a> {
    pub service: &'a str,
    pub target_group: &'a str,
}

/// One path rule of the HTTP listener, as the ALB evaluates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerRule<'a> {
    pub priority: u32,
    pub path: &'a str,
    pub target: RuleTarget<'a>,
}

impl Stack {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    pub fn registry(&self, service: &str) -> Option<&Registry> {
        self.registries.iter().find(|r| r.service == service)
    }

    /// The path rules, lowest priority number (evaluated first) first.
    pub fn listener_rules(&self) -> Vec<ListenerRule<'_>> {
        let mut rules: Vec<_> = self
            .services
            .iter()
            .flat_map(|service| {
                service.routes.iter().map(move |route| ListenerRule {
                    priority: route.priority,
                    path: &route.path,
                    target: RuleTarget {
                        service: &service.name,
                        target_group: &service.target_group,
                    },
                })
            })
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    /// The service the listener's default action forwards to (validation guarantees one).
    pub fn default_service(&self) -> Option<&Service> {
        self.services.iter().find(|s| s.default_route)
    }

    /// The parameters a service's tasks read at start (its secrets), in variable order.
    pub fn parameters_for<'a>(
        &'a self,
        service: &'a Service,
    ) -> impl Iterator<Item = (&'a str, &'a Parameter)> {
        service
            .secrets
            .iter()
            .filter_map(|(var, name)| Some((var.as_str(), self.parameter(name)?)))
    }

    /// The target-group health check as it runs in `environment`: a local environment's
    /// faster interval, timeout and thresholds replace the service's AWS values.
    pub fn effective_health_check(
        &self,
        service: &Service,
        environment: &Environment,
    ) -> HealthCheck {
        let mut check = service.health_check.clone();
        if let Some(local) = environment.as_local() {
            check.interval = local.health_check_interval;
            check.timeout = local.health_check_timeout;
            check.healthy_threshold = local.healthy_threshold;
            check.unhealthy_threshold = local.unhealthy_threshold;
        }
        check
    }

    /// The deregistration delay as it runs in `environment` (locally: the environment's).
    pub fn effective_deregistration_delay(
        &self,
        service: &Service,
        environment: &Environment,
    ) -> std::time::Duration {
        environment
            .as_local()
            .map_or(service.deregistration_delay, |local| {
                local.deregistration_delay
            })
    }

    /// The parameters whose values the operator must set (`berth param put`) before the
    /// stack can run: SecureStrings berth neither generates nor fills.
    pub fn operator_parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.parameters
            .iter()
            .filter(|p| matches!(p.value, super::ParameterValue::Operator))
    }
}
