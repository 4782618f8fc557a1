//! Describe calls that check what `up` built against the seed's values, and that `down`
//! left nothing.

use aws_sdk_ec2::types::Filter;

/// Asserts that a describe call lists nothing, showing what it lists otherwise.
macro_rules! assert_empty {
    ($call:expr, $list:ident) => {{
        let out = $call.send().await.expect(stringify!($list));
        assert!(
            out.$list().is_empty(),
            "{} left: {:?}",
            stringify!($list),
            out.$list()
        );
    }};
}

fn stack_filter() -> Filter {
    Filter::builder()
        .name("tag:berth:stack")
        .values("ecs-production")
        .build()
}

pub async fn every_resource_as_the_seed_says(sdk: &aws_config::SdkConfig, url: &str) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    // VPC 10.0.0.0/16 with DNS hostnames.
    let vpcs = ec2
        .describe_vpcs()
        .filters(stack_filter())
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    let vpc_id = vpc.vpc_id().unwrap();
    let hostnames = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hostnames.enable_dns_hostnames().and_then(|v| v.value()),
        Some(true)
    );
    // Two public and two private subnets, one per AZ.
    let subnets = ec2
        .describe_subnets()
        .filters(stack_filter())
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<(&str, &str)> = subnets
        .subnets()
        .iter()
        .map(|s| (s.cidr_block().unwrap(), s.availability_zone().unwrap()))
        .collect();
    cidrs.sort();
    assert_eq!(cidrs.len(), 4, "{cidrs:?}");
    let azs: std::collections::BTreeSet<&str> = cidrs.iter().map(|c| c.1).collect();
    assert_eq!(azs.len(), 2);
    // NAT per AZ, each with its Elastic IP; private route tables through them.
    let nats = ec2
        .describe_nat_gateways()
        .filter(stack_filter())
        .send()
        .await
        .unwrap();
    assert_eq!(nats.nat_gateways().len(), 2);
    let addresses = ec2
        .describe_addresses()
        .filters(stack_filter())
        .send()
        .await
        .unwrap();
    assert_eq!(addresses.addresses().len(), 2);
    let tables = ec2
        .describe_route_tables()
        .filters(stack_filter())
        .send()
        .await
        .unwrap();
    assert_eq!(tables.route_tables().len(), 3);
    let via_nat = tables
        .route_tables()
        .iter()
        .filter(|t| t.routes().iter().any(|r| r.nat_gateway_id().is_some()))
        .count();
    assert_eq!(via_nat, 2);
    // The three chained security groups.
    let groups = ec2
        .describe_security_groups()
        .filters(stack_filter())
        .send()
        .await
        .unwrap();
    let group = |name: &str| {
        groups
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    let (alb, ecs, rds) = (group("ALB-SG"), group("ECS-SG"), group("RDS-SG"));
    let ports = |g: &aws_sdk_ec2::types::SecurityGroup| {
        let mut p: Vec<(i32, String)> = g
            .ip_permissions()
            .iter()
            .flat_map(|p| {
                let port = p.from_port().unwrap();
                p.ip_ranges()
                    .iter()
                    .map(move |r| (port, r.cidr_ip().unwrap().to_owned()))
                    .chain(
                        p.user_id_group_pairs()
                            .iter()
                            .map(move |u| (port, u.group_id().unwrap().to_owned())),
                    )
            })
            .collect();
        p.sort();
        p
    };
    let alb_id = alb.group_id().unwrap().to_owned();
    let ecs_id = ecs.group_id().unwrap().to_owned();
    assert_eq!(
        ports(&alb),
        [(80, "0.0.0.0/0".into()), (443, "0.0.0.0/0".into())]
    );
    assert_eq!(ports(&ecs), [(80, alb_id.clone()), (3001, alb_id.clone())]);
    assert_eq!(ports(&rds), [(5432, ecs_id.clone())]);

    // IAM: the execution role with the managed policy and parameter reads by ARN, never `*`.
    let iam = aws_sdk_iam::Client::new(sdk);
    let attached = iam
        .list_attached_role_policies()
        .role_name("ecsTaskExecutionRole")
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_name(),
        Some("AmazonECSTaskExecutionRolePolicy")
    );
    let inline = iam
        .get_role_policy()
        .role_name("ecsTaskExecutionRole")
        .policy_name("berth")
        .send()
        .await
        .unwrap();
    let doc = percent_encoding::percent_decode_str(inline.policy_document()).decode_utf8_lossy();
    assert!(
        doc.contains("arn:aws:ssm:us-east-1:123456789012:parameter/ecs/backend/DB_PASSWORD"),
        "{doc}"
    );
    assert!(!doc.contains("\"*\""), "{doc}");
    for role in ["frontendTaskRole", "backendTaskRole"] {
        iam.get_role().role_name(role).send().await.unwrap();
    }

    // ECR: scan on push, keep the last 10.
    let ecr = aws_sdk_ecr::Client::new(sdk);
    for repo in ["frontend-repo", "backend-repo"] {
        let r = ecr
            .describe_repositories()
            .repository_names(repo)
            .send()
            .await
            .unwrap();
        let r = &r.repositories()[0];
        assert_eq!(
            r.image_scanning_configuration().map(|s| s.scan_on_push()),
            Some(true)
        );
        let policy = ecr
            .get_lifecycle_policy()
            .repository_name(repo)
            .send()
            .await
            .unwrap();
        assert!(
            policy
                .lifecycle_policy_text()
                .unwrap()
                .contains("\"countNumber\":10")
        );
    }
    // Log groups with 30 days' retention.
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/ecs/")
        .send()
        .await
        .unwrap();
    let mut retention: Vec<(&str, Option<i32>)> = groups
        .log_groups()
        .iter()
        .map(|g| (g.log_group_name().unwrap(), g.retention_in_days()))
        .collect();
    retention.sort();
    assert_eq!(
        retention,
        [("/ecs/backend", Some(30)), ("/ecs/frontend", Some(30))]
    );

    // RDS: private, encrypted, 7 days of backups, in RDS-SG only.
    let rds_client = aws_sdk_rds::Client::new(sdk);
    let db = rds_client
        .describe_db_instances()
        .db_instance_identifier("ecs-postgres-db")
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    assert_eq!(db.db_instance_class(), Some("db.t3.medium"));
    assert_eq!(db.engine(), Some("postgres"));
    assert_eq!(db.allocated_storage(), Some(20));
    assert_eq!(db.storage_type(), Some("gp3"));
    assert_eq!(db.backup_retention_period(), Some(7));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.publicly_accessible(), Some(false));
    assert_eq!(db.db_name(), Some("fileanalyzer"));
    let db_groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(db_groups, [rds.group_id().unwrap()]);
    let host = db.endpoint().and_then(|e| e.address()).unwrap();

    // SSM: outputs filled in, the user and a generated password as SecureStrings.
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let get = |name: &'static str| {
        let ssm = ssm.clone();
        async move {
            let p = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .unwrap();
            let p = p.parameter().unwrap().clone();
            (
                p.r#type().unwrap().as_str().to_owned(),
                p.value().unwrap().to_owned(),
            )
        }
    };
    assert_eq!(
        get("/ecs/backend/DB_HOST").await,
        ("String".into(), host.to_owned())
    );
    assert_eq!(get("/ecs/backend/DB_PORT").await.1, "5432");
    assert_eq!(get("/ecs/backend/DB_NAME").await.1, "fileanalyzer");
    assert_eq!(get("/ecs/backend/FRONTEND_URL").await.1, url);
    assert_eq!(get("/ecs/frontend/API_URL").await.1, format!("{url}/api"));
    let user = get("/ecs/backend/DB_USER").await;
    assert_eq!(user.0, "SecureString");
    assert!(user.1.ends_with("postgres"), "{}", user.1);
    let password = get("/ecs/backend/DB_PASSWORD").await;
    assert_eq!(password.0, "SecureString");
    let plain = password.1.rsplit(':').next().unwrap();
    assert_eq!(plain.len(), 32, "a generated 32-character password");

    // The ALB: internet-facing, in the public subnets, ALB-SG; path rule /api/* -> backend.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let lbs = elb
        .describe_load_balancers()
        .names("ecs-alb")
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internet-facing"));
    assert_eq!(lb.security_groups(), [alb_id.as_str()]);
    assert_eq!(lb.availability_zones().len(), 2);
    let tgs = elb
        .describe_target_groups()
        .names("frontend-tg")
        .names("backend-tg")
        .send()
        .await
        .unwrap();
    let tg = |name: &str| {
        tgs.target_groups()
            .iter()
            .find(|t| t.target_group_name() == Some(name))
            .unwrap()
            .clone()
    };
    let (front, back) = (tg("frontend-tg"), tg("backend-tg"));
    assert_eq!(
        (front.port(), front.health_check_path()),
        (Some(80), Some("/"))
    );
    assert_eq!(
        (back.port(), back.health_check_path()),
        (Some(3001), Some("/api/health"))
    );
    assert_eq!(front.target_type().map(|t| t.as_str()), Some("ip"));
    assert_eq!(front.healthy_threshold_count(), Some(2));
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(80));
    assert_eq!(
        listener.default_actions()[0].target_group_arn(),
        front.target_group_arn()
    );
    let rules = elb
        .describe_rules()
        .listener_arn(listener.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    let api = rules
        .rules()
        .iter()
        .find(|r| r.priority() == Some("100"))
        .expect("rule 100");
    assert_eq!(api.actions()[0].target_group_arn(), back.target_group_arn());

    // Task definitions: Fargate, awsvpc, the seed's sizes, secrets by parameter ARN, awslogs.
    let ecs_client = aws_sdk_ecs::Client::new(sdk);
    let td = ecs_client
        .describe_task_definition()
        .task_definition("backend-task")
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!((td.cpu(), td.memory()), (Some("1024"), Some("2048")));
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    let container = &td.container_definitions()[0];
    assert_eq!(container.name(), Some("backend-app"));
    assert!(container.image().unwrap().ends_with("backend-repo:abc1234"));
    let secret = container
        .secrets()
        .iter()
        .find(|s| s.name() == "DB_PASSWORD")
        .unwrap();
    assert_eq!(
        secret.value_from(),
        "arn:aws:ssm:us-east-1:123456789012:parameter/ecs/backend/DB_PASSWORD"
    );
    let log = container.log_configuration().unwrap();
    assert_eq!(log.log_driver().as_str(), "awslogs");
    assert!(execution_role_is(
        td.execution_role_arn(),
        "ecsTaskExecutionRole"
    ));
    // Services: Fargate, private subnets, no public IP, ECS-SG, bound to their target group.
    let services = ecs_client
        .describe_services()
        .cluster("ecs-production-cluster")
        .services("frontend-service")
        .services("backend-service")
        .send()
        .await
        .unwrap();
    assert_eq!(services.services().len(), 2);
    for s in services.services() {
        assert_eq!(s.desired_count(), 2);
        assert_eq!(s.launch_type().map(|l| l.as_str()), Some("FARGATE"));
        let net = s
            .network_configuration()
            .unwrap()
            .awsvpc_configuration()
            .unwrap();
        assert_eq!(net.security_groups(), [ecs_id.as_str()]);
        assert_eq!(net.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
        assert_eq!(net.subnets().len(), 2);
        assert!(s.load_balancers()[0].target_group_arn().is_some());
    }
}

fn execution_role_is(arn: Option<&str>, name: &str) -> bool {
    arn.is_some_and(|a| a.ends_with(&format!("/{name}")))
}

pub async fn nothing_left(sdk: &aws_config::SdkConfig) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    assert_empty!(ec2.describe_vpcs().filters(stack_filter()), vpcs);
    assert_empty!(ec2.describe_addresses().filters(stack_filter()), addresses);
    assert_empty!(
        ec2.describe_security_groups().filters(stack_filter()),
        security_groups
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(stack_filter())
        .send()
        .await
        .unwrap();
    assert!(
        nats.nat_gateways()
            .iter()
            .all(|n| n.state().map(|s| s.as_str()) == Some("deleted"))
    );
    let iam = aws_sdk_iam::Client::new(sdk);
    for role in [
        "ecsTaskExecutionRole",
        "frontendTaskRole",
        "backendTaskRole",
    ] {
        assert!(
            iam.get_role().role_name(role).send().await.is_err(),
            "{role} left"
        );
    }
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let params = ssm
        .get_parameters_by_path()
        .path("/ecs")
        .recursive(true)
        .send()
        .await
        .unwrap();
    assert!(params.parameters().is_empty());
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    assert_empty!(elb.describe_load_balancers(), load_balancers);
    assert_empty!(elb.describe_target_groups(), target_groups);
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let clusters = ecs
        .describe_clusters()
        .clusters("ecs-production-cluster")
        .send()
        .await
        .unwrap();
    assert!(
        clusters
            .clusters()
            .iter()
            .all(|c| c.status() == Some("INACTIVE"))
    );
    let rds = aws_sdk_rds::Client::new(sdk);
    assert_empty!(rds.describe_db_instances(), db_instances);
    let ecr = aws_sdk_ecr::Client::new(sdk);
    assert_empty!(ecr.describe_repositories(), repositories);
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    assert_empty!(logs.describe_log_groups(), log_groups);
}
