//! `[security_groups]`: ALB-SG → ECS-SG → RDS-SG, derived, plus extra rules.

use crate::model::{
    Cidr, Database, Ingress, IngressSource, SecurityGroup, SecurityGroupRole, SecurityGroups,
};
use crate::reader::{Problems, Sp, Table, as_table};

use super::services::ServiceSpans;

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
