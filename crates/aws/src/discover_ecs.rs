//! Attributes of a task definition and a service as ECS describes them.

use aws_sdk_ecs::types::{Service as EcsService, TaskDefinition};
use berth_spec::Service;

use crate::resource::{Actual, Attrs, Kind, Value};

fn put(attrs: &mut Attrs, key: &'static str, value: impl Into<String>) {
    attrs.insert(key, Value::Text(value.into()));
}

pub(crate) fn task_definition(service: &Service, td: &TaskDefinition) -> Option<Actual> {
    let container = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(service.container_name.as_str()))?;
    let mut a = Attrs::new();
    put(
        &mut a,
        "requires",
        td.requires_compatibilities()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    put(
        &mut a,
        "network_mode",
        td.network_mode().map(|m| m.as_str()).unwrap_or(""),
    );
    put(&mut a, "cpu", td.cpu().unwrap_or(""));
    put(&mut a, "memory", td.memory().unwrap_or(""));
    put(&mut a, "container", container.name().unwrap_or(""));
    put(&mut a, "image", container.image().unwrap_or(""));
    put(
        &mut a,
        "port",
        container
            .port_mappings()
            .first()
            .and_then(|p| p.container_port())
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    let mut env: Vec<String> = container
        .environment()
        .iter()
        .map(|kv| format!("{}={}", kv.name().unwrap_or(""), kv.value().unwrap_or("")))
        .collect();
    env.sort();
    put(&mut a, "environment", env.join(", "));
    let mut secrets: Vec<String> = container
        .secrets()
        .iter()
        .map(|s| format!("{}={}", s.name(), s.value_from()))
        .collect();
    secrets.sort();
    put(&mut a, "secrets", secrets.join(", "));
    if let Some(logs) = container.log_configuration() {
        put(
            &mut a,
            "log_group",
            logs.options()
                .and_then(|o| o.get("awslogs-group"))
                .cloned()
                .unwrap_or_default(),
        );
    }
    let role_name = |arn: Option<&str>| {
        arn.and_then(|a| a.rsplit('/').next())
            .unwrap_or("")
            .to_owned()
    };
    put(&mut a, "execution_role", role_name(td.execution_role_arn()));
    put(&mut a, "task_role", role_name(td.task_role_arn()));
    Some(Actual {
        id: format!("taskdef/{}", service.name),
        kind: Kind::TaskDefinition,
        name: service.task_family.clone(),
        physical: td.task_definition_arn().unwrap_or("").to_owned(),
        attrs: a,
    })
}

pub(crate) fn service(service: &Service, s: &EcsService) -> Actual {
    let mut a = Attrs::new();
    put(
        &mut a,
        "launch_type",
        s.launch_type().map(|l| l.as_str()).unwrap_or(""),
    );
    // `family:revision` -> `family`: the service follows its family.
    let family = s
        .task_definition()
        .and_then(|arn| arn.rsplit('/').next())
        .and_then(|fr| fr.split(':').next())
        .unwrap_or("");
    put(&mut a, "task_definition", family);
    put(&mut a, "desired_count", s.desired_count().to_string());
    if let Some(vpc) = s
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
    {
        put(&mut a, "subnets", vpc.subnets().join(", "));
        put(&mut a, "security_groups", vpc.security_groups().join(", "));
        if let Some(ip) = vpc.assign_public_ip() {
            put(&mut a, "assign_public_ip", ip.as_str());
        }
    }
    if let Some(lb) = s.load_balancers().first() {
        // Both groups of a traffic-shifting service (discovery relabels and sorts them).
        let groups: Vec<&str> = lb
            .target_group_arn()
            .into_iter()
            .chain(
                lb.advanced_configuration()
                    .and_then(|a| a.alternate_target_group_arn()),
            )
            .collect();
        if !groups.is_empty() {
            put(&mut a, "target_group", groups.join(", "));
        }
    }
    // moto omits these: absent attributes are not compared (reference/moto.md).
    if let Some(d) = s.deployment_configuration() {
        if let Some(v) = d.minimum_healthy_percent() {
            put(&mut a, "minimum_healthy_percent", v.to_string());
        }
        if let Some(v) = d.maximum_percent() {
            put(&mut a, "maximum_percent", v.to_string());
        }
        put(&mut a, "strategy", crate::strategy::strategy_text(d));
        if let Some(cb) = d.deployment_circuit_breaker() {
            put(
                &mut a,
                "circuit_breaker",
                format!("enable={} rollback={}", cb.enable(), cb.rollback()),
            );
        }
    }
    if let Some(g) = s.health_check_grace_period_seconds() {
        put(&mut a, "health_check_grace_period", g.to_string());
    }
    Actual {
        id: format!("service/{}", service.name),
        kind: Kind::Service,
        name: service.service_name.clone(),
        physical: s.service_arn().unwrap_or("").to_owned(),
        attrs: a,
    }
}
