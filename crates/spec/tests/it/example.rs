//! The example stack carries the seed's values, name for name.

use std::path::PathBuf;
use std::time::Duration;

use berth_spec::{
    DatabaseKind, IngressSource, NatGateways, ParameterType, ParameterValue, SecurityGroupRole,
    Stack, Strategy,
};

pub fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml")
}

fn example() -> Stack {
    match berth_spec::load(&example_path()) {
        Ok(stack) => stack,
        Err(e) => panic!("the example must be valid: {e:?}"),
    }
}

#[test]
fn cluster_network_and_security_groups() {
    let stack = example();
    assert_eq!(stack.cluster, "ecs-production-cluster");
    assert_eq!(stack.network.vpc_name, "ecs-production-vpc");
    assert_eq!(stack.network.cidr.to_string(), "10.0.0.0/16");
    assert_eq!(stack.network.availability_zones, 2);
    assert_eq!(stack.network.nat, NatGateways::PerAz);
    assert_eq!(stack.network.public_subnets.len(), 2);
    assert_eq!(stack.network.private_subnets.len(), 2);

    let sg = &stack.security_groups;
    assert_eq!(sg.alb.name, "ALB-SG");
    let alb_ports: Vec<u16> = sg.alb.ingress.iter().map(|i| i.port).collect();
    assert_eq!(alb_ports, [80, 443]);
    assert!(sg.alb.ingress.iter().all(|i| i.source == IngressSource::Cidr(berth_spec::Cidr::parse("0.0.0.0/0").unwrap())));
    assert_eq!(sg.ecs.name, "ECS-SG");
    let ecs_ports: Vec<u16> = sg.ecs.ingress.iter().map(|i| i.port).collect();
    assert_eq!(ecs_ports, [80, 3001]);
    assert!(
        sg.ecs
            .ingress
            .iter()
            .all(|i| i.source == IngressSource::Group(SecurityGroupRole::Alb))
    );
    let rds = sg.rds.as_ref().expect("a managed database has RDS-SG");
    assert_eq!(rds.name, "RDS-SG");
    assert_eq!(rds.ingress[0].port, 5432);
    assert_eq!(
        rds.ingress[0].source,
        IngressSource::Group(SecurityGroupRole::Ecs)
    );
}

#[test]
fn iam_registries_database_and_load_balancer() {
    let stack = example();
    assert_eq!(stack.iam.execution_role.name, "ecsTaskExecutionRole");
    assert_eq!(stack.iam.execution_role.parameters.len(), 7);
    assert_eq!(
        stack.iam.task_role("frontend").unwrap().name,
        "frontendTaskRole"
    );
    assert_eq!(
        stack.iam.task_role("backend").unwrap().name,
        "backendTaskRole"
    );

    let repos: Vec<&str> = stack.registries.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(repos, ["frontend-repo", "backend-repo"]);
    assert!(
        stack
            .registries
            .iter()
            .all(|r| r.scan_on_push && r.keep_last == 10 && !r.immutable_tags)
    );

    let db = stack.database.as_ref().unwrap();
    assert_eq!(db.name, "fileanalyzer");
    assert_eq!(db.port, 5432);
    let DatabaseKind::Managed(m) = &db.kind else {
        panic!("managed database")
    };
    assert_eq!(m.identifier, "ecs-postgres-db");
    assert_eq!(m.engine, "postgres");
    assert_eq!(m.version, "15");
    assert_eq!(m.instance_class, "db.t3.medium");
    assert_eq!(m.allocated_storage, 20);
    assert_eq!(m.storage_type, "gp3");
    assert_eq!(m.backup_retention_days, 7);
    assert_eq!(m.subnet_group, "ecs-db-subnet-group");
    assert!(!m.multi_az && m.storage_encrypted);

    assert_eq!(stack.load_balancer.name, "ecs-alb");
    assert_eq!(stack.load_balancer.http_port, 80);
    let rules = stack.listener_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (
            rules[0].path,
            rules[0].priority,
            rules[0].target.target_group
        ),
        ("/api/*", 100, "backend-tg")
    );
    assert_eq!(stack.default_service().unwrap().target_group, "frontend-tg");
}

#[test]
fn services_match_the_seed() {
    let stack = example();
    let frontend = stack.service("frontend").unwrap();
    assert_eq!(frontend.task_family, "frontend-task");
    assert_eq!(frontend.service_name, "frontend-service");
    assert_eq!(frontend.repository, "frontend-repo");
    assert_eq!(
        (frontend.cpu, frontend.memory, frontend.port),
        (512, 1024, 80)
    );
    assert_eq!(frontend.health_check.path, "/");
    assert_eq!(frontend.health_check.healthy_threshold, 2);
    assert_eq!(frontend.logs.group, "/ecs/frontend");
    assert_eq!(frontend.secrets["API_URL"], "/ecs/frontend/API_URL");

    let backend = stack.service("backend").unwrap();
    assert_eq!(backend.task_family, "backend-task");
    assert_eq!(backend.container_name, "backend-app");
    assert_eq!(
        (backend.cpu, backend.memory, backend.port),
        (1024, 2048, 3001)
    );
    assert_eq!(backend.environment["PORT"], "3001");
    assert_eq!(backend.target_group, "backend-tg");
    assert_eq!(backend.health_check.path, "/api/health");
    assert_eq!(backend.health_check.interval, Duration::from_secs(30));
    assert_eq!(backend.health_check.timeout, Duration::from_secs(5));
    let secrets: Vec<&str> = backend.secrets.keys().map(String::as_str).collect();
    assert_eq!(
        secrets,
        [
            "DB_HOST",
            "DB_NAME",
            "DB_PASSWORD",
            "DB_PORT",
            "DB_USER",
            "FRONTEND_URL"
        ]
    );
    assert!(
        backend
            .build
            .as_ref()
            .unwrap()
            .artifact
            .ends_with("target/release/file-analyzer-api")
    );

    for service in [frontend, backend] {
        assert_eq!(service.desired_count, 2);
        assert_eq!(service.logs.retention_days, Some(30));
        assert_eq!(service.logs.stream_prefix, "ecs");
        assert_eq!(service.deployment.strategy, Strategy::Rolling);
        assert_eq!(
            (
                service.deployment.minimum_healthy_percent,
                service.deployment.maximum_percent
            ),
            (100, 200)
        );
        assert!(
            service.deployment.circuit_breaker.enable
                && service.deployment.circuit_breaker.rollback
        );
    }
}

#[test]
fn parameters_match_the_seed() {
    let stack = example();
    let names: Vec<&str> = stack.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "/ecs/backend/DB_HOST",
            "/ecs/backend/DB_PORT",
            "/ecs/backend/DB_NAME",
            "/ecs/backend/DB_USER",
            "/ecs/backend/DB_PASSWORD",
            "/ecs/backend/FRONTEND_URL",
            "/ecs/frontend/API_URL",
        ]
    );
    let user = stack.parameter("/ecs/backend/DB_USER").unwrap();
    assert_eq!(
        (user.kind, &user.value),
        (
            ParameterType::SecureString,
            &ParameterValue::DatabaseUsername
        )
    );
    let password = stack.parameter("/ecs/backend/DB_PASSWORD").unwrap();
    assert_eq!(
        (password.kind, &password.value),
        (
            ParameterType::SecureString,
            &ParameterValue::DatabasePassword
        )
    );

    let ParameterValue::Template { template } =
        &stack.parameter("/ecs/frontend/API_URL").unwrap().value
    else {
        panic!("API_URL is a template")
    };
    let url = template.render(|r| {
        (r == &berth_spec::Reference::LoadBalancerUrl)
            .then(|| "http://ecs-alb-1.elb.amazonaws.com".to_owned())
    });
    assert_eq!(url.unwrap(), "http://ecs-alb-1.elb.amazonaws.com/api");
    let backend = stack.service("backend").unwrap();
    assert_eq!(stack.parameters_for(backend).count(), 6);
}

#[test]
fn local_environment_is_faster_than_aws() {
    let stack = example();
    let local = stack.environment("local").unwrap();
    let backend = stack.service("backend").unwrap();
    let check = stack.effective_health_check(backend, local);
    assert_eq!(check.interval, Duration::from_secs(2));
    assert_eq!(check.healthy_threshold, 2);
    let production = stack.environment("production").unwrap();
    assert_eq!(production.as_aws().unwrap().region, "us-east-1");
    assert_eq!(
        stack.effective_health_check(backend, production),
        backend.health_check
    );
}

#[test]
fn parameters_render_from_outputs() {
    let stack = example();
    let outputs = berth_spec::Outputs {
        database_host: Some("ecs-postgres-db.abc.us-east-1.rds.amazonaws.com".into()),
        database_port: Some(5432),
        database_name: Some("fileanalyzer".into()),
        load_balancer_dns_name: Some("ecs-alb-1.us-east-1.elb.amazonaws.com".into()),
        load_balancer_url: Some("http://ecs-alb-1.us-east-1.elb.amazonaws.com".into()),
    };
    let values = stack.render_parameters(&outputs).unwrap();
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        get("/ecs/backend/DB_HOST"),
        Some("ecs-postgres-db.abc.us-east-1.rds.amazonaws.com")
    );
    assert_eq!(get("/ecs/backend/DB_PORT"), Some("5432"));
    assert_eq!(get("/ecs/backend/DB_NAME"), Some("fileanalyzer"));
    assert_eq!(
        get("/ecs/frontend/API_URL"),
        Some("http://ecs-alb-1.us-east-1.elb.amazonaws.com/api")
    );
    assert_eq!(
        get("/ecs/backend/DB_USER"),
        None,
        "SecureStrings are never rendered"
    );

    let missing = stack
        .render_parameters(&berth_spec::Outputs::default())
        .unwrap_err();
    assert_eq!(missing.parameter, "/ecs/backend/DB_HOST");
}

#[test]
fn parameter_references_chain() {
    let text = r#"
[stack]
name = "demo"
[services.web]
port = 80
[parameters."/demo/BASE"]
value = "${load_balancer.url}"
[parameters."/demo/API"]
value = "${param:/demo/BASE}/api/$${literal}"
"#;
    let stack = berth_spec::parse(text, "f", std::path::Path::new("/")).unwrap();
    let outputs = berth_spec::Outputs {
        load_balancer_url: Some("http://127.0.0.1:8080".into()),
        ..Default::default()
    };
    let values = stack.render_parameters(&outputs).unwrap();
    assert_eq!(
        values[1],
        (
            "/demo/API".to_owned(),
            "http://127.0.0.1:8080/api/${literal}".to_owned()
        )
    );
}

/// The whole resolved example, as `berth explain` prints it: pins every default.
#[test]
fn resolved_example_snapshot() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let stack = berth_spec::parse(
        &text,
        "berth.toml",
        std::path::Path::new("/repo/examples/file-analyzer"),
    )
    .unwrap();
    insta::assert_snapshot!(toml::to_string_pretty(&stack).unwrap());
}
