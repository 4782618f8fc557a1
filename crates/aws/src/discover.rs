//! Finds the stack's resources in the account: EC2 resources by their `berth:stack` and
//! `berth:resource` tags, the others by their unique names (checked against the tag where
//! the service keeps tags). Read-only: only Describe/Get/List calls.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Tag};
use berth_spec::{Outputs, ParameterValue, Stack};

use crate::clients::Clients;
use crate::desired::Known;
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Attrs, Kind, Value};

pub const STACK_TAG: &str = "berth:stack";
pub const RESOURCE_TAG: &str = "berth:resource";

/// What the account holds of a stack.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub known: Known,
    pub actual: Vec<Actual>,
}

impl Snapshot {
    pub fn get(&self, id: &str) -> Option<&Actual> {
        self.actual.iter().find(|a| a.id == id)
    }
}

fn actual(id: &str, kind: Kind, name: &str, physical: &str, attrs: Attrs) -> Actual {
    Actual {
        id: id.to_owned(),
        kind,
        name: name.to_owned(),
        physical: physical.to_owned(),
        attrs,
    }
}

fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn attrs<const N: usize>(pairs: [(&'static str, String); N]) -> Attrs {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::Text(v)))
        .collect()
}

/// Attributes that list other resources: their physical ids are replaced by logical ids
/// and the list is sorted, as `desired` writes them.
const REFERENCE_ATTRS: [&str; 9] = [
    "default_action",
    "rules",
    "vpc",
    "subnet",
    "subnets",
    "default_route",
    "ingress",
    "security_groups",
    "target_group",
];

fn relabel(text: &str, map: &BTreeMap<String, String>) -> String {
    let mut items: Vec<String> = text
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.split(' ')
                .map(|word| map.get(word).map_or(word, String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    items.sort();
    items.join(", ")
}

/// Where discovery looks: the environment, its Region and account.
pub(crate) struct Place<'a> {
    pub environment: &'a str,
    pub region: &'a str,
    pub account_id: &'a str,
}

/// Reads the account's view of `stack`.
pub(crate) async fn discover(c: &Clients, stack: &Stack, place: &Place<'_>) -> Result<Snapshot> {
    let mut known = Known {
        environment: place.environment.to_owned(),
        region: place.region.to_owned(),
        account_id: place.account_id.to_owned(),
        ..Known::default()
    };
    // Boxed: the SDK's futures are large, and nested joins of them overflow a thread's
    // stack in debug builds.
    let (mut ec2, others, azs, oidc) = tokio::try_join!(
        Box::pin(ec2(c, &stack.name)),
        Box::pin(named(c, stack, &known)),
        Box::pin(availability_zones(c)),
        Box::pin(oidc_provider(c, stack, &known)),
    )?;
    let (mut rest, images, outputs) = others;
    ec2.append(&mut rest);
    match oidc {
        Some(Oidc::Ours(provider)) => ec2.push(provider),
        Some(Oidc::Shared) => known.shared_oidc_provider = true,
        None => {}
    }
    let map: BTreeMap<String, String> = ec2
        .iter()
        .map(|a| (a.physical.clone(), a.id.clone()))
        .collect();
    for a in &mut ec2 {
        for key in REFERENCE_ATTRS {
            if let Some(Value::Text(text)) = a.attrs.get_mut(key) {
                *text = relabel(text, &map);
            }
        }
    }
    known.azs = azs;
    known.images = images;
    known.outputs = outputs;
    Ok(Snapshot { known, actual: ec2 })
}

/// The account's GitHub OIDC provider as this stack sees it.
enum Oidc {
    /// Made by this stack's `up` (its `berth:stack` tag): the stack manages it.
    Ours(Actual),
    /// Made by someone else: used, never changed.
    Shared,
}

/// Looked up only where `up` of this environment would create it.
async fn oidc_provider(c: &Clients, stack: &Stack, known: &Known) -> Result<Option<Oidc>> {
    if crate::ci::enabled(stack, known).is_none() {
        return Ok(None);
    }
    let arn = crate::ci::provider_arn(known);
    let provider = match c
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
    {
        Ok(p) => p,
        Err(e) if error::code(&e) == Some("NoSuchEntity") => return Ok(None),
        Err(e) => return Err(error::call("iam:GetOpenIDConnectProvider")(e)),
    };
    let tags = c
        .iam
        .list_open_id_connect_provider_tags()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
        .map_err(error::call("iam:ListOpenIDConnectProviderTags"))?;
    let ours = tags
        .tags()
        .iter()
        .any(|t| t.key() == STACK_TAG && t.value() == stack.name);
    if !ours {
        return Ok(Some(Oidc::Shared));
    }
    let mut audiences: Vec<&str> = provider
        .client_id_list()
        .iter()
        .map(String::as_str)
        .collect();
    audiences.sort();
    Ok(Some(Oidc::Ours(actual(
        "oidc/github",
        Kind::OidcProvider,
        crate::ci::GITHUB_OIDC_HOST,
        &arn,
        attrs([
            ("url", provider.url().unwrap_or("").to_owned()),
            ("audiences", audiences.join(", ")),
        ]),
    ))))
}

async fn availability_zones(c: &Clients) -> Result<Vec<String>> {
    let out = c
        .ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(error::call("ec2:DescribeAvailabilityZones"))?;
    let mut azs: Vec<String> = out
        .availability_zones()
        .iter()
        .filter_map(|z| z.zone_name().map(str::to_owned))
        .collect();
    azs.sort();
    Ok(azs)
}

fn stack_filter(stack: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{STACK_TAG}"))
        .values(stack)
        .build()
}

async fn ec2(c: &Clients, stack: &str) -> Result<Vec<Actual>> {
    let mut out = Vec::new();
    let vpcs = c
        .ec2
        .describe_vpcs()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeVpcs"))?;
    for vpc in vpcs.vpcs() {
        let (Some(id), Some(vpc_id)) = (tag(vpc.tags(), RESOURCE_TAG), vpc.vpc_id()) else {
            continue;
        };
        let attr = |a| {
            c.ec2
                .describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(a)
                .send()
        };
        let hostnames = attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
            .await
            .map_err(error::call("ec2:DescribeVpcAttribute"))?;
        let support = attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport)
            .await
            .map_err(error::call("ec2:DescribeVpcAttribute"))?;
        let flag = |v: Option<&aws_sdk_ec2::types::AttributeBooleanValue>| {
            v.and_then(|v| v.value()).unwrap_or(false).to_string()
        };
        out.push(actual(
            id,
            Kind::Vpc,
            tag(vpc.tags(), "Name").unwrap_or(""),
            vpc_id,
            attrs([
                ("cidr", vpc.cidr_block().unwrap_or("").to_owned()),
                ("dns_hostnames", flag(hostnames.enable_dns_hostnames())),
                ("dns_support", flag(support.enable_dns_support())),
            ]),
        ));
    }
    let igws = c
        .ec2
        .describe_internet_gateways()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeInternetGateways"))?;
    for igw in igws.internet_gateways() {
        let (Some(id), Some(igw_id)) = (tag(igw.tags(), RESOURCE_TAG), igw.internet_gateway_id())
        else {
            continue;
        };
        let vpc = igw
            .attachments()
            .iter()
            .filter_map(|a| a.vpc_id())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(actual(
            id,
            Kind::InternetGateway,
            tag(igw.tags(), "Name").unwrap_or(""),
            igw_id,
            attrs([("vpc", vpc)]),
        ));
    }
    let subnets = c
        .ec2
        .describe_subnets()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeSubnets"))?;
    for s in subnets.subnets() {
        let (Some(id), Some(subnet_id)) = (tag(s.tags(), RESOURCE_TAG), s.subnet_id()) else {
            continue;
        };
        out.push(actual(
            id,
            Kind::Subnet,
            tag(s.tags(), "Name").unwrap_or(""),
            subnet_id,
            attrs([
                ("cidr", s.cidr_block().unwrap_or("").to_owned()),
                (
                    "availability_zone",
                    s.availability_zone().unwrap_or("").to_owned(),
                ),
            ]),
        ));
    }
    let nats = c
        .ec2
        .describe_nat_gateways()
        .filter(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeNatGateways"))?;
    for n in nats.nat_gateways() {
        use aws_sdk_ec2::types::NatGatewayState as S;
        if matches!(n.state(), Some(S::Deleted | S::Deleting | S::Failed)) {
            continue;
        }
        let (Some(id), Some(nat_id)) = (tag(n.tags(), RESOURCE_TAG), n.nat_gateway_id()) else {
            continue;
        };
        out.push(actual(
            id,
            Kind::NatGateway,
            tag(n.tags(), "Name").unwrap_or(""),
            nat_id,
            attrs([("subnet", n.subnet_id().unwrap_or("").to_owned())]),
        ));
    }
    let tables = c
        .ec2
        .describe_route_tables()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeRouteTables"))?;
    for t in tables.route_tables() {
        let (Some(id), Some(table_id)) = (tag(t.tags(), RESOURCE_TAG), t.route_table_id()) else {
            continue;
        };
        let target = t
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .and_then(|r| r.gateway_id().or(r.nat_gateway_id()))
            .unwrap_or("")
            .to_owned();
        let subnets = t
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id())
            .collect::<Vec<_>>()
            .join(", ");
        out.push(actual(
            id,
            Kind::RouteTable,
            tag(t.tags(), "Name").unwrap_or(""),
            table_id,
            attrs([("default_route", target), ("subnets", subnets)]),
        ));
    }
    let groups = c
        .ec2
        .describe_security_groups()
        .filters(stack_filter(stack))
        .send()
        .await
        .map_err(error::call("ec2:DescribeSecurityGroups"))?;
    for g in groups.security_groups() {
        let (Some(id), Some(group_id)) = (tag(g.tags(), RESOURCE_TAG), g.group_id()) else {
            continue;
        };
        let mut ingress = Vec::new();
        for p in g.ip_permissions() {
            let port = p.from_port().unwrap_or(0);
            for r in p.ip_ranges() {
                ingress.push(format!("{port} from {}", r.cidr_ip().unwrap_or("")));
            }
            for pair in p.user_id_group_pairs() {
                ingress.push(format!("{port} from {}", pair.group_id().unwrap_or("")));
            }
        }
        out.push(actual(
            id,
            Kind::SecurityGroup,
            g.group_name().unwrap_or(""),
            group_id,
            attrs([
                ("description", g.description().unwrap_or("").to_owned()),
                ("ingress", ingress.join(", ")),
            ]),
        ));
    }
    Ok(out)
}

/// Resources found by name, the images per service and the stack's outputs.
async fn named(
    c: &Clients,
    stack: &Stack,
    known: &Known,
) -> Result<(Vec<Actual>, BTreeMap<String, String>, Outputs)> {
    let (iam, ecr, logs, ssm, rds, ecs, elb, scaling) = tokio::try_join!(
        Box::pin(roles(c, stack, known)),
        Box::pin(repositories(c, stack)),
        Box::pin(log_groups(c, stack)),
        Box::pin(parameters(c, stack)),
        Box::pin(database(c, stack)),
        Box::pin(ecs(c, stack)),
        Box::pin(crate::discover_elb::load_balancer(c, stack)),
        Box::pin(crate::discover_scaling::autoscaling(c, stack)),
    )?;
    let (mut out, images_in_repos) = ecr;
    let (ecs, running_images) = ecs;
    let (rds, db_outputs) = rds;
    let (elb, lb_outputs) = elb;
    for mut list in [iam, logs, ssm, rds, ecs, elb, scaling] {
        out.append(&mut list);
    }
    // The current image where a task definition exists, else the repository's newest.
    let mut images = images_in_repos;
    images.extend(running_images);
    let outputs = Outputs {
        database_host: db_outputs.as_ref().map(|(h, _)| h.clone()),
        database_port: db_outputs.as_ref().map(|(_, p)| *p),
        database_name: stack.database.as_ref().map(|d| d.name.clone()),
        load_balancer_url: lb_outputs.as_ref().map(|dns| format!("http://{dns}")),
        load_balancer_dns_name: lb_outputs,
    };
    Ok((out, images, outputs))
}

/// A policy document as IAM returns it (URL-encoded) or as written: canonical JSON.
pub(crate) fn canonical_policy(doc: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str::<serde_json::Value>(&decoded)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| decoded.into_owned())
}

/// The ARNs of the managed policies attached to role `name`.
pub(crate) async fn attached_policies(c: &Clients, name: &str) -> Result<Vec<String>> {
    let out = c
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(error::call("iam:ListAttachedRolePolicies"))?;
    Ok(out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect())
}

async fn roles(c: &Clients, stack: &Stack, known: &Known) -> Result<Vec<Actual>> {
    let mut wanted = vec![(
        "role/execution".to_owned(),
        stack.iam.execution_role.name.clone(),
    )];
    for t in &stack.iam.task_roles {
        wanted.push((format!("role/task/{}", t.service), t.name.clone()));
    }
    // Looked for whatever the strategies, so that it goes once no service shifts traffic.
    wanted.push((
        crate::desired::INFRASTRUCTURE_ROLE.to_owned(),
        crate::desired::infrastructure_role_name(stack),
    ));
    if let Some((ci, _)) = crate::ci::enabled(stack, known) {
        wanted.push(("role/ci/deploy".to_owned(), ci.deploy_role.clone()));
        wanted.push(("role/ci/plan".to_owned(), ci.plan_role.clone()));
    }
    let mut out = Vec::new();
    for (id, name) in wanted {
        let role = match c.iam.get_role().role_name(&name).send().await {
            Ok(r) => r,
            Err(e) if error::code(&e) == Some("NoSuchEntity") => continue,
            Err(e) => return Err(error::call("iam:GetRole")(e)),
        };
        let Some(role) = role.role() else { continue };
        if !role
            .tags()
            .iter()
            .any(|t| t.key() == STACK_TAG && t.value() == stack.name)
        {
            return Err(Error::Foreign {
                kind: "iam role",
                name,
                stack: stack.name.clone(),
            });
        }
        let trust = role
            .assume_role_policy_document()
            .map(canonical_policy)
            .unwrap_or_default();
        let mut managed = attached_policies(c, &name).await?;
        managed.sort();
        let inline = match c
            .iam
            .get_role_policy()
            .role_name(&name)
            .policy_name(crate::ops::INLINE_POLICY)
            .send()
            .await
        {
            Ok(p) => canonical_policy(p.policy_document()),
            Err(e) if error::code(&e) == Some("NoSuchEntity") => String::new(),
            Err(e) => return Err(error::call("iam:GetRolePolicy")(e)),
        };
        out.push(actual(
            &id,
            Kind::Role,
            &name,
            role.arn(),
            attrs([
                (
                    "trust",
                    if trust.contains("ecs-tasks.amazonaws.com") {
                        "ecs-tasks.amazonaws.com".to_owned()
                    } else {
                        trust
                    },
                ),
                ("managed_policies", managed.join(", ")),
                ("inline_policy", inline),
            ]),
        ));
    }
    Ok(out)
}

async fn repositories(
    c: &Clients,
    stack: &Stack,
) -> Result<(Vec<Actual>, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut images = BTreeMap::new();
    for registry in &stack.registries {
        let repos = match c
            .ecr
            .describe_repositories()
            .repository_names(&registry.name)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if error::code(&e) == Some("RepositoryNotFoundException") => continue,
            Err(e) => return Err(error::call("ecr:DescribeRepositories")(e)),
        };
        let Some(repo) = repos.repositories().first() else {
            continue;
        };
        let keep_last = match c
            .ecr
            .get_lifecycle_policy()
            .repository_name(&registry.name)
            .send()
            .await
        {
            Ok(p) => p
                .lifecycle_policy_text()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| v["rules"][0]["selection"]["countNumber"].as_u64())
                .map_or(String::new(), |n| n.to_string()),
            Err(e) if error::code(&e) == Some("LifecyclePolicyNotFoundException") => String::new(),
            Err(e) => return Err(error::call("ecr:GetLifecyclePolicy")(e)),
        };
        let scan = repo
            .image_scanning_configuration()
            .map(|s| s.scan_on_push())
            .unwrap_or(false);
        let uri = repo.repository_uri().unwrap_or("");
        out.push(actual(
            &format!("repo/{}", registry.service),
            Kind::Repository,
            &registry.name,
            repo.repository_arn().unwrap_or(""),
            attrs([
                ("scan_on_push", scan.to_string()),
                (
                    "tag_mutability",
                    repo.image_tag_mutability()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_default(),
                ),
                ("keep_last", keep_last),
            ]),
        ));
        if let Some(image) = newest_image(c, &registry.name, uri, None).await? {
            images.insert(registry.service.clone(), image);
        }
    }
    Ok((out, images))
}

/// The newest image of repository `name` (at `uri`), as `uri:tag` (or `uri@digest` if
/// untagged); only among the images tagged `tag` when given.
pub(crate) async fn newest_image(
    c: &Clients,
    name: &str,
    uri: &str,
    tag: Option<&str>,
) -> Result<Option<String>> {
    let mut call = c.ecr.describe_images().repository_name(name);
    if let Some(tag) = tag {
        call = call.image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        );
    }
    let found = match call.send().await {
        Ok(found) => found,
        Err(e) if tag.is_some() && error::code(&e) == Some("ImageNotFoundException") => {
            return Ok(None);
        }
        Err(e) => return Err(error::call("ecr:DescribeImages")(e)),
    };
    let newest = found
        .image_details()
        .iter()
        .max_by_key(|d| d.image_pushed_at().map(|t| (t.secs(), t.subsec_nanos())));
    Ok(newest.map(
        |d| match tag.or(d.image_tags().first().map(String::as_str)) {
            Some(tag) => format!("{uri}:{tag}"),
            None => format!("{uri}@{}", d.image_digest().unwrap_or("")),
        },
    ))
}

async fn log_groups(c: &Clients, stack: &Stack) -> Result<Vec<Actual>> {
    let mut out = Vec::new();
    for service in &stack.services {
        let name = &service.logs.group;
        let found = c
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .map_err(error::call("logs:DescribeLogGroups"))?;
        let Some(group) = found
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name.as_str()))
        else {
            continue;
        };
        out.push(actual(
            &format!("logs/{}", service.name),
            Kind::LogGroup,
            name,
            group.arn().unwrap_or(name),
            attrs([(
                "retention_days",
                group
                    .retention_in_days()
                    .map_or("never expire".to_owned(), |d| d.to_string()),
            )]),
        ));
    }
    Ok(out)
}

async fn parameters(c: &Clients, stack: &Stack) -> Result<Vec<Actual>> {
    let names: Vec<&str> = stack
        .parameters
        .iter()
        .filter(|p| !matches!(p.value, ParameterValue::Operator))
        .map(|p| p.name.as_str())
        .collect();
    let mut out = Vec::new();
    // GetParameters takes at most 10 names.
    for chunk in names.chunks(10) {
        let found = c
            .ssm
            .get_parameters()
            .set_names(Some(chunk.iter().map(|s| s.to_string()).collect()))
            .with_decryption(false)
            .send()
            .await
            .map_err(error::call("ssm:GetParameters"))?;
        for p in found.parameters() {
            let name = p.name().unwrap_or("");
            let secure = p.r#type() == Some(&aws_sdk_ssm::types::ParameterType::SecureString);
            let mut a = attrs([(
                "type",
                p.r#type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            )]);
            a.insert(
                "value",
                if secure {
                    Value::Secret
                } else {
                    Value::Text(p.value().unwrap_or("").to_owned())
                },
            );
            out.push(actual(
                &crate::desired::parameter_id(name),
                Kind::Parameter,
                name,
                p.arn().unwrap_or(name),
                a,
            ));
        }
    }
    Ok(out)
}

async fn database(c: &Clients, stack: &Stack) -> Result<(Vec<Actual>, Option<(String, u16)>)> {
    let Some(db) = stack.database.as_ref().and_then(|d| d.managed()) else {
        return Ok((Vec::new(), None));
    };
    let mut out = Vec::new();
    match c
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(&db.subnet_group)
        .send()
        .await
    {
        Ok(found) => {
            if let Some(g) = found.db_subnet_groups().first() {
                let subnets = g
                    .subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier())
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push(actual(
                    "db-subnet-group",
                    Kind::DbSubnetGroup,
                    &db.subnet_group,
                    g.db_subnet_group_arn().unwrap_or(&db.subnet_group),
                    attrs([("subnets", subnets)]),
                ));
            }
        }
        Err(e) if error::code(&e) == Some("DBSubnetGroupNotFoundFault") => {}
        Err(e) => return Err(error::call("rds:DescribeDBSubnetGroups")(e)),
    }
    let mut outputs = None;
    match c
        .rds
        .describe_db_instances()
        .db_instance_identifier(&db.identifier)
        .send()
        .await
    {
        Ok(found) => {
            if let Some(i) = found
                .db_instances()
                .first()
                .filter(|i| i.db_instance_status() != Some("deleting"))
            {
                let groups = i
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id())
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Some(ep) = i.endpoint() {
                    outputs = Some((
                        ep.address().unwrap_or("").to_owned(),
                        ep.port()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(5432),
                    ));
                }
                let mut a = attrs([
                    ("engine", i.engine().unwrap_or("").to_owned()),
                    (
                        "instance_class",
                        i.db_instance_class().unwrap_or("").to_owned(),
                    ),
                    (
                        "allocated_storage",
                        i.allocated_storage().unwrap_or(0).to_string(),
                    ),
                    ("storage_type", i.storage_type().unwrap_or("").to_owned()),
                    (
                        "backup_retention_days",
                        i.backup_retention_period().unwrap_or(0).to_string(),
                    ),
                    ("multi_az", i.multi_az().unwrap_or(false).to_string()),
                    (
                        "storage_encrypted",
                        i.storage_encrypted().unwrap_or(false).to_string(),
                    ),
                    (
                        "publicly_accessible",
                        i.publicly_accessible().unwrap_or(false).to_string(),
                    ),
                    ("security_groups", groups),
                ]);
                a.insert("master_password", Value::Secret);
                out.push(actual(
                    "db",
                    Kind::Database,
                    &db.identifier,
                    i.db_instance_arn().unwrap_or(&db.identifier),
                    a,
                ));
            }
        }
        Err(e) if error::code(&e) == Some("DBInstanceNotFound") => {}
        Err(e) => return Err(error::call("rds:DescribeDBInstances")(e)),
    }
    Ok((out, outputs))
}

/// The cluster, task definitions and services; the images the task definitions run.
async fn ecs(c: &Clients, stack: &Stack) -> Result<(Vec<Actual>, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    let mut images = BTreeMap::new();
    let clusters = c
        .ecs
        .describe_clusters()
        .clusters(&stack.cluster)
        .send()
        .await
        .map_err(error::call("ecs:DescribeClusters"))?;
    let cluster = clusters
        .clusters()
        .iter()
        .find(|cl| cl.status() == Some("ACTIVE"));
    if let Some(cl) = cluster {
        out.push(actual(
            "cluster",
            Kind::Cluster,
            &stack.cluster,
            cl.cluster_arn().unwrap_or(&stack.cluster),
            Attrs::new(),
        ));
    }
    for service in &stack.services {
        let td = match c
            .ecs
            .describe_task_definition()
            .task_definition(&service.task_family)
            .send()
            .await
        {
            Ok(td) => td,
            Err(e) if error::code(&e) == Some("ClientException") => continue,
            Err(e) => return Err(error::call("ecs:DescribeTaskDefinition")(e)),
        };
        let Some(td) = td.task_definition() else {
            continue;
        };
        if td.status() != Some(&aws_sdk_ecs::types::TaskDefinitionStatus::Active) {
            continue;
        }
        if let Some(a) = crate::discover_ecs::task_definition(service, td) {
            if let Some(Value::Text(image)) = a.attrs.get("image") {
                images.insert(service.name.clone(), image.clone());
            }
            out.push(a);
        }
    }
    if cluster.is_some() {
        let names: Vec<String> = stack
            .services
            .iter()
            .map(|s| s.service_name.clone())
            .collect();
        let found = c.services.describe(&stack.cluster, names).await?;
        for s in &found {
            if s.status() != Some("ACTIVE") {
                continue;
            }
            let Some(service) = stack
                .services
                .iter()
                .find(|x| Some(x.service_name.as_str()) == s.service_name())
            else {
                continue;
            };
            out.push(crate::discover_ecs::service(service, s));
        }
    }
    Ok((out, images))
}
