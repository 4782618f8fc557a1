//! Network, security groups, IAM, registries, database and load balancer.

use std::time::Duration;

use crate::diagnostics::Problem;
use crate::model::{
    Cidr, Database, DatabaseKind, ExecutionRole, Https, Iam, Ingress, IngressSource, LoadBalancer,
    ManagedDatabase, NatGateways, Network, PolicyStatement, SecurityGroup, SecurityGroupRole,
    SecurityGroups, TaskRole,
};
use crate::reader::{Problems, Sp, Table, as_table, did_you_mean};
use crate::rules;

use super::parameters::ParameterSpans;
use super::services::ServiceSpans;

pub(crate) fn network(top: &mut Table<'_, '_>, problems: &mut Problems, stack: &str) -> Network {
    let mut network = Network {
        vpc_name: format!("{stack}-vpc"),
        cidr: Cidr {
            addr: [10, 0, 0, 0].into(),
            prefix: 16,
        },
        availability_zones: 2,
        public_subnets: Vec::new(),
        private_subnets: Vec::new(),
        nat: NatGateways::PerAz,
    };
    let Some(mut t) = top.table(problems, "network") else {
        derive_subnets(&mut network, problems, None);
        return network;
    };
    if let Some(name) = t.text(problems, "vpc_name") {
        network.vpc_name = name.value;
    }
    let cidr = t
        .text(problems, "cidr")
        .and_then(|c| match Cidr::parse(&c.value) {
            Ok(cidr) if (16..=28).contains(&cidr.prefix) => Some(Sp::new(cidr, c.span)),
            Ok(_) => {
                problems.at(
                    "berth::bad_value",
                    c.span,
                    "a VPC's CIDR block is between /16 and /28",
                    "prefix out of range",
                );
                None
            }
            Err(why) => {
                problems.at("berth::bad_value", c.span, why, "invalid CIDR block");
                None
            }
        });
    if let Some(cidr) = &cidr {
        network.cidr = cidr.value;
    }
    if let Some(azs) = t.u32(problems, "availability_zones", 2, 6) {
        network.availability_zones = u8::try_from(azs.value).unwrap_or(2);
    }
    if let Some(nat) = t.str(problems, "nat") {
        network.nat = match nat.value {
            "per_az" => NatGateways::PerAz,
            "single" => NatGateways::Single,
            "none" => NatGateways::None,
            other => {
                problems.at(
                    "berth::bad_value",
                    nat.span,
                    format!("`nat` must be \"per_az\", \"single\" or \"none\", not \"{other}\""),
                    "unknown NAT mode",
                );
                NatGateways::PerAz
            }
        };
    }
    let public = subnet_list(&mut t, problems, "public_subnets", &network);
    let private = subnet_list(&mut t, problems, "private_subnets", &network);
    let table_span = t.span.clone();
    t.finish(problems);
    derive_subnets(
        &mut network,
        problems,
        cidr.as_ref().map(|c| c.span.clone()),
    );
    if let Some(p) = public {
        network.public_subnets = p.iter().map(|s| s.value).collect();
    }
    if let Some(p) = private {
        network.private_subnets = p.iter().map(|s| s.value).collect();
    }
    // Given subnets must not overlap each other.
    let all: Vec<Cidr> = network
        .public_subnets
        .iter()
        .chain(&network.private_subnets)
        .copied()
        .collect();
    for (i, a) in all.iter().enumerate() {
        if let Some(b) = all[i + 1..].iter().find(|b| a.overlaps(**b)) {
            problems.at(
                "berth::bad_value",
                table_span.clone(),
                format!("subnets {a} and {b} overlap"),
                "overlapping subnets",
            );
        }
    }
    network
}

fn subnet_list(
    t: &mut Table<'_, '_>,
    problems: &mut Problems,
    key: &'static str,
    network: &Network,
) -> Option<Vec<Sp<Cidr>>> {
    let list = t.strings(problems, key)?;
    let mut out = Vec::new();
    for item in list.value {
        match Cidr::parse(&item.value) {
            Ok(c) if network.cidr.contains(c) && c.prefix <= 28 => out.push(Sp::new(c, item.span)),
            Ok(c) => problems.at(
                "berth::bad_value",
                item.span,
                format!(
                    "subnet {c} is not a /16../28 block inside the VPC's {}",
                    network.cidr
                ),
                "outside the VPC",
            ),
            Err(why) => problems.at("berth::bad_value", item.span, why, "invalid CIDR block"),
        }
    }
    if out.len() != usize::from(network.availability_zones) {
        problems.at(
            "berth::bad_value",
            list.span,
            format!(
                "`network.{key}` needs one subnet per Availability Zone ({})",
                network.availability_zones
            ),
            format!("{} given", out.len()),
        );
    }
    Some(out)
}

/// Public subnets in the VPC's first half, private in the second, each 1/16 of the VPC
/// (what the console's "VPC and more" does: 10.0.0.0/16 → 10.0.0.0/20, 10.0.128.0/20, ...).
fn derive_subnets(
    network: &mut Network,
    problems: &mut Problems,
    span: Option<std::ops::Range<usize>>,
) {
    let prefix = network.cidr.prefix + 4;
    let half = 1u32 << 3;
    let mut public = Vec::new();
    let mut private = Vec::new();
    for az in 0..u32::from(network.availability_zones) {
        match (
            network.cidr.subnet(prefix, az),
            network.cidr.subnet(prefix, half + az),
        ) {
            (Some(a), Some(b)) if prefix <= 28 => {
                public.push(a);
                private.push(b);
            }
            _ => {
                if let Some(span) = span {
                    problems.at(
                        "berth::bad_value",
                        span,
                        format!("{} is too small to derive subnets; list them in `public_subnets` and `private_subnets`", network.cidr),
                        "too small",
                    );
                }
                return;
            }
        }
    }
    network.public_subnets = public;
    network.private_subnets = private;
}

/// The load balancer and the `default_service` it names, if any.
pub(crate) fn load_balancer(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
) -> (LoadBalancer, Option<Sp<String>>) {
    let mut lb = LoadBalancer {
        name: format!("{stack}-alb"),
        http_port: 80,
        https: None,
        idle_timeout: Duration::from_secs(60),
    };
    let Some(mut t) = top.table(problems, "load_balancer") else {
        return (lb, None);
    };
    let default_service = t.text(problems, "default_service");
    if let Some(name) = t.text(problems, "name") {
        let why = rules::dns_label_problem(&name.value, 32).or_else(|| {
            name.value
                .starts_with("internal-")
                .then(|| "cannot start with `internal-`".into())
        });
        if let Some(why) = why {
            problems.at(
                "berth::bad_name",
                name.span.clone(),
                format!("invalid load balancer name: {why}"),
                "invalid name",
            );
        }
        lb.name = name.value;
    }
    if let Some(port) = t.u16(problems, "http_port", 1, 65535) {
        lb.http_port = port.value;
    }
    if let Some(timeout) = t.duration(
        problems,
        "idle_timeout",
        Duration::from_secs(1),
        Duration::from_secs(4000),
    ) {
        lb.idle_timeout = timeout.value;
    }
    if let Some(mut h) = t.table(problems, "https") {
        let port = h.u16(problems, "port", 1, 65535).map_or(443, |p| p.value);
        let certificate_arn = match h.text(problems, "certificate_arn") {
            Some(arn) => {
                if !arn.value.starts_with("arn:") {
                    problems.at(
                        "berth::bad_value",
                        arn.span.clone(),
                        "`certificate_arn` is an ACM certificate ARN",
                        "not an ARN",
                    );
                }
                arn.value
            }
            None => {
                if !h.mentions("certificate_arn") {
                    problems.at(
                        "berth::missing_key",
                        h.span.clone(),
                        "an HTTPS listener needs `certificate_arn`",
                        "no certificate",
                    );
                }
                String::new()
            }
        };
        let redirect_http = h.bool(problems, "redirect_http").unwrap_or(true);
        if port == lb.http_port {
            problems.at(
                "berth::bad_value",
                h.span.clone(),
                "the HTTPS and HTTP listeners need different ports",
                "same port",
            );
        }
        h.finish(problems);
        lb.https = Some(Https {
            port,
            certificate_arn,
            redirect_http,
        });
    }
    t.finish(problems);
    (lb, default_service)
}

pub(crate) struct RegistryDefaults {
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub keep_last: u32,
}

pub(crate) fn registry_defaults(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
) -> RegistryDefaults {
    let mut defaults = RegistryDefaults {
        scan_on_push: true,
        immutable_tags: false,
        keep_last: 10,
    };
    let Some(mut t) = top.table(problems, "registries") else {
        return defaults;
    };
    if let Some(scan) = t.bool(problems, "scan_on_push") {
        defaults.scan_on_push = scan;
    }
    if let Some(m) = t.str(problems, "tag_mutability") {
        match m.value {
            "mutable" => defaults.immutable_tags = false,
            "immutable" => defaults.immutable_tags = true,
            other => problems.at(
                "berth::bad_value",
                m.span,
                format!("`tag_mutability` must be \"mutable\" or \"immutable\", not \"{other}\""),
                "unknown value",
            ),
        }
    }
    if let Some(keep) = t.u32(problems, "keep_last", 1, 1000) {
        defaults.keep_last = keep.value;
    }
    t.finish(problems);
    defaults
}

/// The database section and the spans of the parameters it names.
pub(crate) fn database(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
) -> (Option<Database>, Vec<Sp<String>>) {
    let Some(mut t) = top.table(problems, "database") else {
        return (None, Vec::new());
    };
    let name = match t.text(problems, "name") {
        Some(n) => {
            if !rules::pg_identifier_ok(&n.value) {
                problems.at(
                    "berth::bad_name",
                    n.span.clone(),
                    "a database name is a letter followed by letters, digits or `_` (at most 63)",
                    "invalid database name",
                );
            }
            n.value
        }
        None => {
            if !t.mentions("name") {
                problems.at(
                    "berth::missing_key",
                    t.span.clone(),
                    "`database.name` is required",
                    "no `name`",
                );
            }
            String::new()
        }
    };
    let port = t
        .u16(problems, "port", 1150, 65535)
        .map_or(5432, |p| p.value);
    let username_parameter = t.text(problems, "username_parameter");
    let password_parameter = t.text(problems, "password_parameter");
    let spans: Vec<Sp<String>> = [&username_parameter, &password_parameter]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let url = t.text(problems, "url");
    let managed_keys: [&'static str; 12] = [
        "identifier",
        "engine",
        "version",
        "username",
        "instance_class",
        "allocated_storage",
        "storage_type",
        "backup_retention_days",
        "multi_az",
        "storage_encrypted",
        "deletion_protection",
        "subnet_group",
    ];
    let kind = if let Some(url) = url {
        if !(url.value.starts_with("postgres://") || url.value.starts_with("postgresql://")) {
            problems.at(
                "berth::bad_value",
                url.span.clone(),
                "`database.url` is a postgres:// URL",
                "not a PostgreSQL URL",
            );
        }
        if url.value.contains('@')
            && url
                .value
                .split('@')
                .next()
                .is_some_and(|userinfo| userinfo.matches(':').count() >= 2)
        {
            problems.push(
                Problem::new("berth::secret_in_file", "`database.url` carries a password")
                    .label(url.span.clone(), "password in the stack file")
                    .help("keep the password in the parameter store (`password_parameter`) and leave it out of the URL"),
            );
        }
        for key in managed_keys {
            if t.get(key).is_some() {
                problems.push(
                    Problem::new(
                        "berth::misplaced_key",
                        format!("`database.{key}` does not apply to an external database"),
                    )
                    .label(t.key_span(key).unwrap_or_default(), "ignored with `url`")
                    .help("remove it, or remove `url` to let berth run the database"),
                );
            }
        }
        DatabaseKind::External { url: url.value }
    } else {
        let engine = t
            .str(problems, "engine")
            .map_or("postgres".to_owned(), |e| {
                if e.value != "postgres" {
                    problems.at(
                        "berth::bad_value",
                        e.span,
                        "the only engine is \"postgres\"",
                        "unsupported engine",
                    );
                }
                "postgres".to_owned()
            });
        let version = t.text(problems, "version").map_or("15".to_owned(), |v| {
            if !v
                .value
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            {
                problems.at(
                    "berth::bad_value",
                    v.span.clone(),
                    "a PostgreSQL version is like \"15\" or \"15.4\"",
                    "invalid version",
                );
            }
            v.value
        });
        let username = t
            .text(problems, "username")
            .map_or("postgres".to_owned(), |u| {
                if !rules::pg_identifier_ok(&u.value) {
                    problems.at(
                        "berth::bad_name",
                        u.span.clone(),
                        "a user name is a letter followed by letters, digits or `_`",
                        "invalid user name",
                    );
                }
                u.value
            });
        let storage_type = t
            .str(problems, "storage_type")
            .map_or("gp3".to_owned(), |s| {
                if !["gp2", "gp3", "io1", "io2", "standard"].contains(&s.value) {
                    problems.at(
                        "berth::bad_value",
                        s.span.clone(),
                        "`storage_type` is gp2, gp3, io1, io2 or standard",
                        "unknown storage type",
                    );
                }
                s.value.to_owned()
            });
        let instance_class =
            t.text(problems, "instance_class")
                .map_or("db.t3.medium".to_owned(), |c| {
                    if !c.value.starts_with("db.") {
                        problems.at(
                            "berth::bad_value",
                            c.span.clone(),
                            "an instance class starts with `db.` (db.t3.medium)",
                            "not an instance class",
                        );
                    }
                    c.value
                });
        DatabaseKind::Managed(ManagedDatabase {
            identifier: t
                .text(problems, "identifier")
                .map_or(format!("{stack}-db"), |i| i.value),
            engine,
            version,
            username,
            instance_class,
            allocated_storage: t
                .u32(problems, "allocated_storage", 20, 65_536)
                .map_or(20, |a| a.value),
            storage_type,
            backup_retention_days: t
                .u32(problems, "backup_retention_days", 0, 35)
                .map_or(7, |b| b.value),
            multi_az: t.bool(problems, "multi_az").unwrap_or(false),
            storage_encrypted: t.bool(problems, "storage_encrypted").unwrap_or(true),
            deletion_protection: t.bool(problems, "deletion_protection").unwrap_or(false),
            subnet_group: t
                .text(problems, "subnet_group")
                .map_or(format!("{stack}-db-subnet-group"), |s| s.value),
        })
    };
    t.finish(problems);
    let database = Database {
        name,
        port,
        username_parameter: username_parameter.map(|p| p.value),
        password_parameter: password_parameter.map(|p| p.value),
        kind,
    };
    (Some(database), spans)
}

pub(crate) fn iam(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
    services: &[ServiceSpans],
    parameters: &[ParameterSpans],
) -> Iam {
    let mut execution_role = format!("{stack}-execution-role");
    let mut task_roles: Vec<TaskRole> = services
        .iter()
        .map(|s| TaskRole {
            service: s.service.name.clone(),
            name: format!("{stack}-{}-task-role", s.service.name),
            statements: Vec::new(),
        })
        .collect();
    if let Some(mut t) = top.table(problems, "iam") {
        if let Some(name) = t.text(problems, "execution_role") {
            role_name(problems, &name);
            execution_role = name.value;
        }
        if let Some(roles) = t.table(problems, "task_roles") {
            for (service, node) in roles.entries() {
                let Some(mut r) =
                    as_table(problems, node, format!("iam.task_roles.{}", service.value))
                else {
                    continue;
                };
                let Some(role) = task_roles.iter_mut().find(|r| r.service == service.value) else {
                    let names: Vec<&str> =
                        services.iter().map(|s| s.service.name.as_str()).collect();
                    problems.push(
                        Problem::new(
                            "berth::unknown_service",
                            format!(
                                "a task role for `{}`, which is not a service",
                                service.value
                            ),
                        )
                        .label(service.span.clone(), "no such service")
                        .maybe_help(
                            did_you_mean(service.value, names.iter().copied())
                                .map(|s| format!("did you mean `{s}`?")),
                        ),
                    );
                    continue;
                };
                if let Some(name) = r.text(problems, "name") {
                    role_name(problems, &name);
                    role.name = name.value;
                }
                if let Some(statements) = r.array(problems, "statements") {
                    for (i, item) in statements.value.iter().enumerate() {
                        let Some(mut s) =
                            as_table(problems, item, format!("{}.statements[{i}]", r.path))
                        else {
                            continue;
                        };
                        let actions = s
                            .strings(problems, "actions")
                            .map(|a| a.value.into_iter().map(|x| x.value).collect::<Vec<_>>());
                        let resources = s
                            .strings(problems, "resources")
                            .map(|a| a.value.into_iter().map(|x| x.value).collect::<Vec<_>>());
                        if actions.as_ref().is_none_or(Vec::is_empty)
                            || resources.as_ref().is_none_or(Vec::is_empty)
                        {
                            problems.at(
                                "berth::missing_key",
                                item.span(),
                                "a policy statement needs non-empty `actions` and `resources`",
                                "incomplete statement",
                            );
                        }
                        s.finish(problems);
                        role.statements.push(PolicyStatement {
                            actions: actions.unwrap_or_default(),
                            resources: resources.unwrap_or_default(),
                        });
                    }
                }
                r.finish(problems);
            }
        }
        t.finish(problems);
    }
    Iam {
        execution_role: ExecutionRole {
            name: execution_role,
            parameters: parameters
                .iter()
                .map(|p| p.parameter.name.clone())
                .collect(),
        },
        task_roles,
    }
}

fn role_name(problems: &mut Problems, name: &Sp<String>) {
    let ok = name.value.len() <= 64
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !ok {
        problems.at(
            "berth::bad_name",
            name.span.clone(),
            "an IAM role name has at most 64 letters, digits and +=,.@_-",
            "invalid role name",
        );
    }
}

pub(crate) fn security_groups(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
    services: &[ServiceSpans],
    database: Option<&Database>,
) -> SecurityGroups {
    let mut names = [
        format!("{stack}-alb-sg"),
        format!("{stack}-ecs-sg"),
        format!("{stack}-rds-sg"),
    ];
    let mut extra: Vec<(SecurityGroupRole, Ingress)> = Vec::new();
    if let Some(mut t) = top.table(problems, "security_groups") {
        for (i, key) in ["alb", "ecs", "rds"].into_iter().enumerate() {
            if let Some(name) = t.text(problems, key) {
                if name.value.len() > 255 || name.value.to_ascii_lowercase().starts_with("sg-") {
                    problems.at("berth::bad_name", name.span.clone(), "a security group name has at most 255 characters and does not start with `sg-`", "invalid name");
                }
                names[i] = name.value;
            }
        }
        if let Some(rules) = t.array(problems, "rules") {
            for (i, item) in rules.value.iter().enumerate() {
                let Some(mut r) = as_table(problems, item, format!("security_groups.rules[{i}]"))
                else {
                    continue;
                };
                let group = r.str(problems, "group").and_then(|g| role(problems, &g));
                let port = r.u16(problems, "port", 1, 65535);
                let source =
                    r.str(problems, "from")
                        .and_then(|from| match Cidr::parse(from.value) {
                            Ok(cidr) => Some(IngressSource::Cidr(cidr)),
                            Err(_) if !from.value.contains(['/', '.']) => {
                                role(problems, &from).map(IngressSource::Group)
                            }
                            Err(why) => {
                                problems.at(
                                    "berth::bad_value",
                                    from.span.clone(),
                                    why,
                                    "invalid CIDR block",
                                );
                                None
                            }
                        });
                let description = r.text(problems, "description").map(|d| d.value);
                for (key, missing) in [
                    ("group", group.is_none()),
                    ("port", port.is_none()),
                    ("from", source.is_none()),
                ] {
                    if missing && !r.mentions(key) {
                        problems.at(
                            "berth::missing_key",
                            item.span(),
                            format!("a security group rule needs `{key}`"),
                            format!("no `{key}`"),
                        );
                    }
                }
                if group == Some(SecurityGroupRole::Rds)
                    && database.and_then(Database::managed).is_none()
                {
                    problems.at(
                        "berth::bad_value",
                        item.span(),
                        "a rule for the RDS group, but berth manages no database",
                        "no RDS-SG",
                    );
                }
                r.finish(problems);
                if let (Some(group), Some(port), Some(source)) = (group, port, source) {
                    let description = description
                        .unwrap_or_else(|| format!("Allow port {} (extra rule)", port.value));
                    extra.push((
                        group,
                        Ingress {
                            port: port.value,
                            source,
                            description,
                        },
                    ));
                }
            }
        }
        t.finish(problems);
    }
    let [alb_name, ecs_name, rds_name] = names;
    let mut alb = SecurityGroup {
        name: alb_name,
        description: "Security group for Application Load Balancer".into(),
        ingress: vec![
            Ingress {
                port: 80,
                source: IngressSource::Cidr(Cidr::parse("0.0.0.0/0").expect("literal")),
                description: "Allow HTTP from internet".into(),
            },
            Ingress {
                port: 443,
                source: IngressSource::Cidr(Cidr::parse("0.0.0.0/0").expect("literal")),
                description: "Allow HTTPS from internet".into(),
            },
        ],
    };
    let mut ports: Vec<u16> = services
        .iter()
        .map(|s| s.service.port)
        .filter(|p| *p != 0)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut ecs = SecurityGroup {
        name: ecs_name,
        description: "Security group for ECS tasks".into(),
        ingress: ports
            .into_iter()
            .map(|port| Ingress {
                port,
                source: IngressSource::Group(SecurityGroupRole::Alb),
                description: format!("Allow port {port} from ALB"),
            })
            .collect(),
    };
    let mut rds = database.and_then(Database::managed).map(|_| SecurityGroup {
        name: rds_name,
        description: "Security group for RDS database".into(),
        ingress: vec![Ingress {
            port: database.map_or(5432, |d| d.port),
            source: IngressSource::Group(SecurityGroupRole::Ecs),
            description: "Allow PostgreSQL from ECS tasks".into(),
        }],
    });
    for (group, ingress) in extra {
        match group {
            SecurityGroupRole::Alb => alb.ingress.push(ingress),
            SecurityGroupRole::Ecs => ecs.ingress.push(ingress),
            SecurityGroupRole::Rds => {
                if let Some(rds) = &mut rds {
                    rds.ingress.push(ingress);
                }
            }
        }
    }
    SecurityGroups { alb, ecs, rds }
}

fn role(problems: &mut Problems, text: &Sp<&str>) -> Option<SecurityGroupRole> {
    match text.value {
        "alb" => Some(SecurityGroupRole::Alb),
        "ecs" => Some(SecurityGroupRole::Ecs),
        "rds" => Some(SecurityGroupRole::Rds),
        other => {
            problems.at(
                "berth::bad_value",
                text.span.clone(),
                format!("\"{other}\" is not a security group: \"alb\", \"ecs\" or \"rds\""),
                "unknown group",
            );
            None
        }
    }
}
