//! Discovery of the load balancer, its target groups and its HTTP listener, by name.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2 as elb;
use berth_spec::Stack;

use crate::clients::Clients;
use crate::discover::{RESOURCE_TAG, STACK_TAG};
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Attrs, Kind, Value};

fn text(pairs: Vec<(&'static str, String)>) -> Attrs {
    pairs
        .into_iter()
        .map(|(k, v)| (k, Value::Text(v)))
        .collect()
}

/// The value of `key` among (key, value) pairs (the two attribute calls return different
/// types of that shape).
fn value_of<'a>(
    mut pairs: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    key: &str,
) -> String {
    pairs
        .find(|(k, _)| *k == Some(key))
        .and_then(|(_, v)| v)
        .unwrap_or_default()
        .to_owned()
}

async fn attribute(c: &Clients, tg_or_lb: (&str, bool), key: &str) -> Result<String> {
    let (arn, is_lb) = tg_or_lb;
    Ok(if is_lb {
        let out = c
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(error::call(
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
            ))?;
        value_of(out.attributes().iter().map(|a| (a.key(), a.value())), key)
    } else {
        let out = c
            .elb
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(error::call(
                "elasticloadbalancing:DescribeTargetGroupAttributes",
            ))?;
        value_of(out.attributes().iter().map(|a| (a.key(), a.value())), key)
    })
}

/// The ALB (with its DNS name, the stack's output), target groups and listener.
pub(crate) async fn load_balancer(
    c: &Clients,
    stack: &Stack,
) -> Result<(Vec<Actual>, Option<String>)> {
    let mut out = Vec::new();
    let lb_name = &stack.load_balancer.name;
    let mut dns = None;
    let mut lb_arn = None;
    match c.elb.describe_load_balancers().names(lb_name).send().await {
        Ok(found) => {
            if let Some(lb) = found.load_balancers().first() {
                let arn = lb.load_balancer_arn().unwrap_or("").to_owned();
                check_tag(c, &arn, "load balancer", lb_name, &stack.name).await?;
                let mut subnets: Vec<&str> = lb
                    .availability_zones()
                    .iter()
                    .filter_map(|z| z.subnet_id())
                    .collect();
                subnets.sort();
                let idle = attribute(c, (&arn, true), "idle_timeout.timeout_seconds").await?;
                out.push(Actual {
                    id: "alb".into(),
                    kind: Kind::LoadBalancer,
                    name: lb_name.clone(),
                    physical: arn.clone(),
                    attrs: text(vec![
                        (
                            "scheme",
                            lb.scheme()
                                .map(|s| s.as_str().to_owned())
                                .unwrap_or_default(),
                        ),
                        (
                            "type",
                            lb.r#type()
                                .map(|s| s.as_str().to_owned())
                                .unwrap_or_default(),
                        ),
                        ("subnets", subnets.join(", ")),
                        ("security_groups", lb.security_groups().join(", ")),
                        ("idle_timeout", idle),
                    ]),
                });
                dns = lb.dns_name().map(str::to_owned);
                lb_arn = Some(arn);
            }
        }
        Err(e) if error::code(&e) == Some("LoadBalancerNotFound") => {}
        Err(e) => return Err(error::call("elasticloadbalancing:DescribeLoadBalancers")(e)),
    }
    // Each service's alternate target group is looked for whatever its strategy, so that
    // it goes once the service no longer shifts traffic. Rules that ECS moved to it (or
    // weighted between both) are a shifting service's rules all the same: read as its own
    // group (a rolling service's are moved back before its alternate group goes).
    let mut alternates = BTreeMap::new();
    for service in &stack.services {
        let own = target_group(c, format!("tg/{}", service.name), &service.target_group).await?;
        let alternate = target_group(
            c,
            crate::desired::alternate_tg_id(&service.name),
            &service.alternate_target_group(),
        )
        .await?;
        if let (Some(own), Some(alternate)) = (&own, &alternate)
            && crate::desired::shifting_alternate(stack, &own.id).is_some()
        {
            alternates.insert(alternate.physical.clone(), own.physical.clone());
        }
        out.extend(own);
        out.extend(alternate);
    }
    if let Some(arn) = lb_arn {
        let listeners = c
            .elb
            .describe_listeners()
            .load_balancer_arn(&arn)
            .send()
            .await
            .map_err(error::call("elasticloadbalancing:DescribeListeners"))?;
        let http_port = i32::from(stack.load_balancer.http_port);
        let mut others = Vec::new();
        for l in listeners.listeners() {
            let https = l.protocol() == Some(&elb::types::ProtocolEnum::Https);
            // The HTTP listener by its port; an HTTPS one is the stack's whatever its port
            // (so that one the stack no longer asks for is found and deleted).
            let id = if l.port() == Some(http_port) {
                "listener/http"
            } else if https {
                "listener/https"
            } else {
                others.push(l);
                continue;
            };
            out.push(listener(c, lb_name, id, l, &alternates).await?);
        }
        // Test listeners by the resource tag berth gave them, so that one the stack no
        // longer asks for is found and deleted too.
        let arns: Vec<String> = others
            .iter()
            .filter_map(|l| l.listener_arn().map(str::to_owned))
            .collect();
        let ids = resource_tags(c, arns).await?;
        for l in others {
            let Some(id) = l.listener_arn().and_then(|arn| ids.get(arn)) else {
                continue;
            };
            if id.starts_with("listener/test/") {
                out.push(listener(c, lb_name, id, l, &alternates).await?);
            }
        }
    }
    Ok((out, dns))
}

/// The target group named `name`, if it exists.
async fn target_group(c: &Clients, id: String, name: &str) -> Result<Option<Actual>> {
    let found = match c.elb.describe_target_groups().names(name).send().await {
        Ok(f) => f,
        Err(e) if error::code(&e) == Some("TargetGroupNotFound") => return Ok(None),
        Err(e) => return Err(error::call("elasticloadbalancing:DescribeTargetGroups")(e)),
    };
    let Some(tg) = found.target_groups().first() else {
        return Ok(None);
    };
    let arn = tg.target_group_arn().unwrap_or("").to_owned();
    let delay = attribute(c, (&arn, false), "deregistration_delay.timeout_seconds").await?;
    let num = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
    Ok(Some(Actual {
        id,
        kind: Kind::TargetGroup,
        name: name.to_owned(),
        physical: arn,
        attrs: text(vec![
            (
                "protocol",
                tg.protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            ("port", num(tg.port())),
            (
                "target_type",
                tg.target_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "health_check_path",
                tg.health_check_path().unwrap_or("").to_owned(),
            ),
            (
                "health_check_interval",
                num(tg.health_check_interval_seconds()),
            ),
            (
                "health_check_timeout",
                num(tg.health_check_timeout_seconds()),
            ),
            ("healthy_threshold", num(tg.healthy_threshold_count())),
            ("unhealthy_threshold", num(tg.unhealthy_threshold_count())),
            (
                "matcher",
                tg.matcher()
                    .and_then(|m| m.http_code())
                    .unwrap_or("")
                    .to_owned(),
            ),
            ("deregistration_delay", delay),
        ]),
    }))
}

/// The `berth:resource` tag of each of `arns` that has one (DescribeTags takes 20 a call).
async fn resource_tags(c: &Clients, arns: Vec<String>) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let tags = c
            .elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(error::call("elasticloadbalancing:DescribeTags"))?;
        for d in tags.tag_descriptions() {
            let id = d
                .tags()
                .iter()
                .find(|t| t.key() == Some(RESOURCE_TAG))
                .and_then(|t| t.value());
            if let (Some(arn), Some(id)) = (d.resource_arn(), id) {
                ids.insert(arn.to_owned(), id.to_owned());
            }
        }
    }
    Ok(ids)
}

/// A load balancer named like the stack's must carry the stack's tag.
async fn check_tag(
    c: &Clients,
    arn: &str,
    kind: &'static str,
    name: &str,
    stack: &str,
) -> Result<()> {
    let tags = c
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(error::call("elasticloadbalancing:DescribeTags"))?;
    let ours = tags
        .tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(stack));
    if ours {
        Ok(())
    } else {
        Err(Error::Foreign {
            kind,
            name: name.to_owned(),
            stack: stack.to_owned(),
        })
    }
}

/// A listener's attributes, as `desired` writes them (target groups by ARN, relabelled by
/// discovery).
async fn listener(
    c: &Clients,
    lb_name: &str,
    id: &str,
    l: &elb::types::Listener,
    alternates: &BTreeMap<String, String>,
) -> Result<Actual> {
    let listener_arn = l.listener_arn().unwrap_or("").to_owned();
    let default = match l.default_actions().first() {
        Some(a) if a.r#type() == Some(&elb::types::ActionTypeEnum::Redirect) => {
            let r = a.redirect_config();
            format!(
                "redirect {} to {}:{}",
                r.and_then(|r| r.status_code())
                    .map_or("", |c| c.as_str().trim_start_matches("HTTP_")),
                r.and_then(|r| r.protocol()).unwrap_or(""),
                r.and_then(|r| r.port()).unwrap_or("")
            )
        }
        a => format!(
            "forward to {}",
            a.and_then(|a| a.target_group_arn()).unwrap_or("")
        ),
    };
    let rules = c
        .elb
        .describe_rules()
        .listener_arn(&listener_arn)
        .send()
        .await
        .map_err(error::call("elasticloadbalancing:DescribeRules"))?;
    let rules: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .map(|r| {
            let path = r
                .conditions()
                .iter()
                .flat_map(|c| {
                    c.path_pattern_config()
                        .map(|p| p.values().to_vec())
                        .unwrap_or_else(|| c.values().to_vec())
                })
                .collect::<Vec<_>>()
                .join(",");
            let tg = rule_target(r.actions().first(), alternates);
            format!("{} {path} -> {tg}", r.priority().unwrap_or(""))
        })
        .collect();
    let port = l.port().unwrap_or(0);
    let mut attrs = vec![
        ("port", port.to_string()),
        (
            "protocol",
            l.protocol()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        ),
        ("default_action", default),
        ("rules", rules.join(", ")),
    ];
    if let Some(cert) = l.certificates().first().and_then(|c| c.certificate_arn()) {
        attrs.push(("certificate", cert.to_owned()));
    }
    Ok(Actual {
        id: id.into(),
        kind: Kind::Listener,
        name: format!("{lb_name}:{port}"),
        physical: listener_arn,
        attrs: text(attrs),
    })
}

/// The target groups an action forwards to: its one group, or the groups of its weighted
/// forward.
pub(crate) fn forward_groups(action: &elb::types::Action) -> Vec<&str> {
    let mut groups: Vec<&str> = action.target_group_arn().into_iter().collect();
    if let Some(forward) = action.forward_config() {
        groups.extend(
            forward
                .target_groups()
                .iter()
                .filter_map(|t| t.target_group_arn()),
        );
    }
    groups
}

/// The target group a rule forwards to, an alternate (green) group read as its service's
/// own: ECS moves a traffic-shifting service's rule to either, or weights it between both
/// (S3.8), and the rule is the stack's all the same. Several groups of different services
/// are listed all.
fn rule_target(
    action: Option<&elb::types::Action>,
    alternates: &BTreeMap<String, String>,
) -> String {
    let mut groups: Vec<&str> = action
        .map(forward_groups)
        .unwrap_or_default()
        .into_iter()
        .map(|arn| alternates.get(arn).map_or(arn, String::as_str))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups.join(",")
}
