//! VPC, internet gateway, subnets, NAT gateways (with their Elastic IPs), route tables and
//! security groups.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState,
    ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use berth_spec::IngressSource;

use super::Ctx;
use crate::discover::{RESOURCE_TAG, STACK_TAG};
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Resource, Spec};

fn tag_spec(cx: &Ctx<'_>, kind: ResourceType, id: &str, name: &str) -> TagSpecification {
    let tags = cx
        .tags(id, name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(tags))
        .build()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

pub(super) async fn create(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    let ec2 = &cx.c.ec2;
    match &r.spec {
        Spec::Vpc { cidr } => {
            let out = ec2
                .create_vpc()
                .cidr_block(cidr)
                .tag_specifications(tag_spec(cx, ResourceType::Vpc, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateVpc"))?;
            let vpc = out.vpc().and_then(|v| v.vpc_id()).unwrap_or("").to_owned();
            enable_dns(cx, &vpc).await?;
            Ok(vpc)
        }
        Spec::InternetGateway => {
            let out = ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(cx, ResourceType::InternetGateway, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateInternetGateway"))?;
            let igw = out
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .unwrap_or("")
                .to_owned();
            attach(cx, &igw).await?;
            Ok(igw)
        }
        Spec::Subnet { cidr, az, .. } => {
            let out = ec2
                .create_subnet()
                .vpc_id(cx.phys("vpc")?)
                .cidr_block(cidr)
                .availability_zone(az)
                .tag_specifications(tag_spec(cx, ResourceType::Subnet, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateSubnet"))?;
            Ok(out
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or("")
                .to_owned())
        }
        Spec::NatGateway { subnet } => {
            let allocation = match address_of(cx, &r.id).await? {
                Some(allocation) => allocation,
                None => ec2
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(tag_spec(cx, ResourceType::ElasticIp, &r.id, &r.name))
                    .send()
                    .await
                    .map_err(error::call("ec2:AllocateAddress"))?
                    .allocation_id()
                    .unwrap_or("")
                    .to_owned(),
            };
            let out = ec2
                .create_nat_gateway()
                .subnet_id(cx.phys(subnet)?)
                .allocation_id(allocation)
                .tag_specifications(tag_spec(cx, ResourceType::Natgateway, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateNatGateway"))?;
            let nat = out
                .nat_gateway()
                .and_then(|n| n.nat_gateway_id())
                .unwrap_or("")
                .to_owned();
            cx.wait(&r.id, "available", || async {
                let out = ec2
                    .describe_nat_gateways()
                    .nat_gateway_ids(&nat)
                    .send()
                    .await
                    .map_err(error::call("ec2:DescribeNatGateways"))?;
                let state = out.nat_gateways().first().and_then(|n| n.state()).cloned();
                match state {
                    Some(NatGatewayState::Available) => Ok(Some(())),
                    Some(NatGatewayState::Failed) => Err(Error::Other(format!(
                        "NAT gateway {nat} failed: {}",
                        out.nat_gateways()
                            .first()
                            .and_then(|n| n.failure_message())
                            .unwrap_or("no reason given")
                    ))),
                    _ => Ok(None),
                }
            })
            .await?;
            Ok(nat)
        }
        Spec::RouteTable { .. } => {
            let out = ec2
                .create_route_table()
                .vpc_id(cx.phys("vpc")?)
                .tag_specifications(tag_spec(cx, ResourceType::RouteTable, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateRouteTable"))?;
            let table = out
                .route_table()
                .and_then(|t| t.route_table_id())
                .unwrap_or("")
                .to_owned();
            converge_routes(cx, r, &table).await?;
            Ok(table)
        }
        Spec::SecurityGroup { group } => {
            let out = ec2
                .create_security_group()
                .group_name(&group.name)
                .description(&group.description)
                .vpc_id(cx.phys("vpc")?)
                .tag_specifications(tag_spec(cx, ResourceType::SecurityGroup, &r.id, &r.name))
                .send()
                .await
                .map_err(error::call("ec2:CreateSecurityGroup"))?;
            let id = out.group_id().unwrap_or("").to_owned();
            converge_ingress(cx, r, &id).await?;
            Ok(id)
        }
        _ => Err(Error::Other(format!(
            "network::create called for {}",
            r.kind
        ))),
    }
}

pub(super) async fn update(cx: &Ctx<'_>, r: &Resource, a: &Actual) -> Result<String> {
    match &r.spec {
        Spec::Vpc { .. } => enable_dns(cx, &a.physical).await?,
        Spec::InternetGateway => attach(cx, &a.physical).await?,
        Spec::RouteTable { .. } => converge_routes(cx, r, &a.physical).await?,
        Spec::SecurityGroup { .. } => converge_ingress(cx, r, &a.physical).await?,
        _ => {
            return Err(Error::Other(format!(
                "{} {} cannot change in place: delete it with `berth down` or restore its settings",
                r.kind, r.name
            )));
        }
    }
    Ok(a.physical.clone())
}

async fn enable_dns(cx: &Ctx<'_>, vpc: &str) -> Result<()> {
    // One attribute per call, as the API requires.
    for hostnames in [false, true] {
        let call = cx.c.ec2.modify_vpc_attribute().vpc_id(vpc);
        let on = AttributeBooleanValue::builder().value(true).build();
        let call = if hostnames {
            call.enable_dns_hostnames(on)
        } else {
            call.enable_dns_support(on)
        };
        call.send()
            .await
            .map_err(error::call("ec2:ModifyVpcAttribute"))?;
    }
    Ok(())
}

async fn attach(cx: &Ctx<'_>, igw: &str) -> Result<()> {
    cx.c.ec2
        .attach_internet_gateway()
        .internet_gateway_id(igw)
        .vpc_id(cx.phys("vpc")?)
        .send()
        .await
        .map_err(error::call("ec2:AttachInternetGateway"))?;
    Ok(())
}

/// The Elastic IP allocated for NAT gateway `id`, if one is left from an earlier run.
async fn address_of(cx: &Ctx<'_>, id: &str) -> Result<Option<String>> {
    let out =
        cx.c.ec2
            .describe_addresses()
            .filters(filter(&format!("tag:{STACK_TAG}"), &cx.stack.name))
            .filters(filter(&format!("tag:{RESOURCE_TAG}"), id))
            .send()
            .await
            .map_err(error::call("ec2:DescribeAddresses"))?;
    Ok(out
        .addresses()
        .iter()
        .find_map(|a| a.allocation_id().map(str::to_owned)))
}

/// Releases the Elastic IPs of deleted NAT gateway `id`, or (`None`, after `down` deleted
/// every NAT gateway) every Elastic IP of the stack.
pub(super) async fn release_addresses(cx: &Ctx<'_>, id: Option<&str>) -> Result<()> {
    let mut call =
        cx.c.ec2
            .describe_addresses()
            .filters(filter(&format!("tag:{STACK_TAG}"), &cx.stack.name));
    if let Some(id) = id {
        call = call.filters(filter(&format!("tag:{RESOURCE_TAG}"), id));
    }
    let out = call
        .send()
        .await
        .map_err(error::call("ec2:DescribeAddresses"))?;
    // Called once the NAT gateways are gone: an association the API still shows belongs to
    // a deleted gateway (moto keeps it), so every address goes.
    for a in out.addresses() {
        if let Some(allocation) = a.allocation_id() {
            cx.c.ec2
                .release_address()
                .allocation_id(allocation)
                .send()
                .await
                .map_err(error::call("ec2:ReleaseAddress"))?;
        }
    }
    Ok(())
}

async fn converge_routes(cx: &Ctx<'_>, r: &Resource, table: &str) -> Result<()> {
    let Spec::RouteTable { target, subnets } = &r.spec else {
        return Err(Error::Other(format!("{} is not a route table", r.id)));
    };
    let ec2 = &cx.c.ec2;
    let found = ec2
        .describe_route_tables()
        .route_table_ids(table)
        .send()
        .await
        .map_err(error::call("ec2:DescribeRouteTables"))?;
    let current = found.route_tables().first();
    let target_id = cx.phys(target)?;
    let is_nat = target.starts_with("nat/");
    let route = current.and_then(|t| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
    });
    let existing = route.and_then(|r| r.gateway_id().or(r.nat_gateway_id()));
    if existing != Some(target_id.as_str()) {
        macro_rules! route_call {
            ($call:expr, $name:literal) => {{
                let call = $call
                    .route_table_id(table)
                    .destination_cidr_block("0.0.0.0/0");
                let call = if is_nat {
                    call.nat_gateway_id(&target_id)
                } else {
                    call.gateway_id(&target_id)
                };
                call.send().await.map_err(error::call($name))?;
            }};
        }
        if route.is_some() {
            route_call!(ec2.replace_route(), "ec2:ReplaceRoute");
        } else {
            route_call!(ec2.create_route(), "ec2:CreateRoute");
        }
    }
    let wanted = cx.phys_all(subnets)?;
    let associations: Vec<_> = current
        .map(|t| t.associations().to_vec())
        .unwrap_or_default();
    for subnet in &wanted {
        if !associations.iter().any(|a| a.subnet_id() == Some(subnet)) {
            ec2.associate_route_table()
                .route_table_id(table)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(error::call("ec2:AssociateRouteTable"))?;
        }
    }
    for a in &associations {
        if let (Some(subnet), Some(association)) = (a.subnet_id(), a.route_table_association_id())
            && !wanted.iter().any(|w| w == subnet)
        {
            ec2.disassociate_route_table()
                .association_id(association)
                .send()
                .await
                .map_err(error::call("ec2:DisassociateRouteTable"))?;
        }
    }
    Ok(())
}

/// One inbound TCP rule: (port, CIDR or group id).
type Rule = (i32, String);

fn permission((port, source): &Rule) -> IpPermission {
    let p = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(*port)
        .to_port(*port);
    if source.starts_with("sg-") {
        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(source).build())
    } else {
        p.ip_ranges(IpRange::builder().cidr_ip(source).build())
    }
    .build()
}

async fn converge_ingress(cx: &Ctx<'_>, r: &Resource, group_id: &str) -> Result<()> {
    let Spec::SecurityGroup { group } = &r.spec else {
        return Err(Error::Other(format!("{} is not a security group", r.id)));
    };
    let mut wanted: Vec<Rule> = Vec::new();
    for rule in &group.ingress {
        let source = match &rule.source {
            IngressSource::Cidr(cidr) => cidr.to_string(),
            IngressSource::Group(role) => cx.phys(&crate::desired::sg_id(*role))?,
        };
        wanted.push((i32::from(rule.port), source));
    }
    let found =
        cx.c.ec2
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(error::call("ec2:DescribeSecurityGroups"))?;
    let mut current: Vec<Rule> = Vec::new();
    for p in found
        .security_groups()
        .first()
        .map(|g| g.ip_permissions())
        .unwrap_or_default()
    {
        let port = p.from_port().unwrap_or(0);
        current.extend(
            p.ip_ranges()
                .iter()
                .filter_map(|r| Some((port, r.cidr_ip()?.to_owned()))),
        );
        current.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| Some((port, g.group_id()?.to_owned()))),
        );
    }
    let missing: Vec<IpPermission> = wanted
        .iter()
        .filter(|w| !current.contains(w))
        .map(permission)
        .collect();
    let extra: Vec<IpPermission> = current
        .iter()
        .filter(|c| !wanted.contains(c))
        .map(permission)
        .collect();
    if !missing.is_empty() {
        cx.c.ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(missing))
            .send()
            .await
            .map_err(error::call("ec2:AuthorizeSecurityGroupIngress"))?;
    }
    if !extra.is_empty() {
        cx.c.ec2
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(extra))
            .send()
            .await
            .map_err(error::call("ec2:RevokeSecurityGroupIngress"))?;
    }
    Ok(())
}

pub(super) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    use crate::resource::Kind as K;
    let ec2 = &cx.c.ec2;
    let id = a.physical.as_str();
    match a.kind {
        K::Vpc => {
            ec2.delete_vpc()
                .vpc_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteVpc"))?;
        }
        K::InternetGateway => {
            let found = ec2
                .describe_internet_gateways()
                .internet_gateway_ids(id)
                .send()
                .await
                .map_err(error::call("ec2:DescribeInternetGateways"))?;
            for vpc in found
                .internet_gateways()
                .iter()
                .flat_map(|g| g.attachments())
                .filter_map(|at| at.vpc_id())
            {
                ec2.detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .map_err(error::call("ec2:DetachInternetGateway"))?;
            }
            ec2.delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteInternetGateway"))?;
        }
        K::Subnet => {
            ec2.delete_subnet()
                .subnet_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteSubnet"))?;
        }
        K::NatGateway => {
            ec2.delete_nat_gateway()
                .nat_gateway_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteNatGateway"))?;
            cx.wait(&a.id, "deleted", || async {
                let out = ec2
                    .describe_nat_gateways()
                    .nat_gateway_ids(id)
                    .send()
                    .await
                    .map_err(error::call("ec2:DescribeNatGateways"))?;
                let state = out.nat_gateways().first().and_then(|n| n.state()).cloned();
                Ok(matches!(state, None | Some(NatGatewayState::Deleted)).then_some(()))
            })
            .await?;
            release_addresses(cx, Some(&a.id)).await?;
        }
        K::RouteTable => {
            let found = ec2
                .describe_route_tables()
                .route_table_ids(id)
                .send()
                .await
                .map_err(error::call("ec2:DescribeRouteTables"))?;
            for association in found
                .route_tables()
                .iter()
                .flat_map(|t| t.associations())
                .filter(|s| !s.main().unwrap_or(false))
                .filter_map(|s| s.route_table_association_id())
            {
                ec2.disassociate_route_table()
                    .association_id(association)
                    .send()
                    .await
                    .map_err(error::call("ec2:DisassociateRouteTable"))?;
            }
            ec2.delete_route_table()
                .route_table_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteRouteTable"))?;
        }
        K::SecurityGroup => {
            ec2.delete_security_group()
                .group_id(id)
                .send()
                .await
                .map_err(error::call("ec2:DeleteSecurityGroup"))?;
        }
        _ => {
            return Err(Error::Other(format!(
                "network::delete called for {}",
                a.kind
            )));
        }
    }
    Ok(())
}
