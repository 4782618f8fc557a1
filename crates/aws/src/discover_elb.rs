//! Discovery of the load balancer, its target groups and its HTTP listener, by name.

use aws_sdk_elasticloadbalancingv2 as elb;
use berth_spec::Stack;

use crate::clients::Clients;
use crate::discover::STACK_TAG;
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
    for service in &stack.services {
        let found = match c
            .elb
            .describe_target_groups()
            .names(&service.target_group)
            .send()
            .await
        {
            Ok(f) => f,
            Err(e) if error::code(&e) == Some("TargetGroupNotFound") => continue,
            Err(e) => return Err(error::call("elasticloadbalancing:DescribeTargetGroups")(e)),
        };
        let Some(tg) = found.target_groups().first() else {
            continue;
        };
        let arn = tg.target_group_arn().unwrap_or("").to_owned();
        let delay = attribute(c, (&arn, false), "deregistration_delay.timeout_seconds").await?;
        let num = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        out.push(Actual {
            id: format!("tg/{}", service.name),
            kind: Kind::TargetGroup,
            name: service.target_group.clone(),
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
        });
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
        for l in listeners.listeners() {
            let https = l.protocol() == Some(&elb::types::ProtocolEnum::Https);
            // The HTTP listener by its port; an HTTPS one is the stack's whatever its port
            // (so that one the stack no longer asks for is found and deleted).
            let id = if l.port() == Some(http_port) {
                "listener/http"
            } else if https {
                "listener/https"
            } else {
                continue;
            };
            out.push(listener(c, lb_name, id, l).await?);
        }
    }
    Ok((out, dns))
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
            let tg = r
                .actions()
                .first()
                .and_then(|a| a.target_group_arn())
                .unwrap_or("");
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
