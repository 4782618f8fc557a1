//! The ECS cluster, the ALB with its target groups and listener, task definitions and
//! services.

use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2 as elb;

use super::Ctx;
use crate::desired;
use crate::discover_elb::forward_groups;
use crate::error::{self, Error, Result};
use crate::resource::{Actual, ListenerDefault, Resource, Spec};
use crate::services::ServiceRequest;
use crate::strategy::{self, Wiring};

fn elb_tags(cx: &Ctx<'_>, r: &Resource) -> Vec<elb::types::Tag> {
    cx.tags(&r.id, &r.name)
        .into_iter()
        .map(|(k, v)| elb::types::Tag::builder().key(k).value(v).build())
        .collect()
}

fn ecs_tags(cx: &Ctx<'_>, r: &Resource) -> Vec<ecs::Tag> {
    cx.tags(&r.id, &r.name)
        .into_iter()
        .map(|(k, v)| ecs::Tag::builder().key(k).value(v).build())
        .collect()
}

fn secs(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn forward(tg: String) -> elb::types::Action {
    elb::types::Action::builder()
        .r#type(elb::types::ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

/// A rule's action: a forward to `tg`, or for a traffic-shifting service a weighted forward
/// with its `alternate` group at weight 0, the shape whose weights ECS moves (S3.8).
fn rule_action(tg: String, alternate: Option<String>) -> elb::types::Action {
    let Some(alternate) = alternate else {
        return forward(tg);
    };
    let group = |arn: String, weight: i32| {
        elb::types::TargetGroupTuple::builder()
            .target_group_arn(arn)
            .weight(weight)
            .build()
    };
    elb::types::Action::builder()
        .r#type(elb::types::ActionTypeEnum::Forward)
        .forward_config(
            elb::types::ForwardActionConfig::builder()
                .target_groups(group(tg, 100))
                .target_groups(group(alternate, 0))
                .build(),
        )
        .build()
}

fn protocol(certificate: &Option<String>) -> elb::types::ProtocolEnum {
    match certificate {
        Some(_) => elb::types::ProtocolEnum::Https,
        None => elb::types::ProtocolEnum::Http,
    }
}

fn certificates(certificate: &Option<String>) -> Option<Vec<elb::types::Certificate>> {
    certificate.as_ref().map(|arn| {
        vec![
            elb::types::Certificate::builder()
                .certificate_arn(arn)
                .build(),
        ]
    })
}

fn default_action(cx: &Ctx<'_>, default: &ListenerDefault) -> Result<elb::types::Action> {
    // A redirect keeps the host, path and query (`#{host}` ... are the defaults).
    Ok(match default {
        ListenerDefault::Forward(tg) => forward(cx.phys(tg)?),
        ListenerDefault::RedirectHttps(port) => elb::types::Action::builder()
            .r#type(elb::types::ActionTypeEnum::Redirect)
            .redirect_config(
                elb::types::RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port(port.to_string())
                    .status_code(elb::types::RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
    })
}

pub(super) async fn create(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    let c = cx.c;
    match &r.spec {
        Spec::Cluster => {
            let out = c
                .ecs
                .create_cluster()
                .cluster_name(&r.name)
                .set_tags(Some(ecs_tags(cx, r)))
                .send()
                .await
                .map_err(error::call("ecs:CreateCluster"))?;
            Ok(out
                .cluster()
                .and_then(|c| c.cluster_arn())
                .unwrap_or(&r.name)
                .to_owned())
        }
        Spec::LoadBalancer { subnets, .. } => {
            let out = c
                .elb
                .create_load_balancer()
                .name(&r.name)
                .set_subnets(Some(cx.phys_all(subnets)?))
                .security_groups(cx.phys("sg/alb")?)
                .scheme(elb::types::LoadBalancerSchemeEnum::InternetFacing)
                .r#type(elb::types::LoadBalancerTypeEnum::Application)
                .set_tags(Some(elb_tags(cx, r)))
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:CreateLoadBalancer"))?;
            let arn = out
                .load_balancers()
                .first()
                .and_then(|l| l.load_balancer_arn())
                .unwrap_or("")
                .to_owned();
            converge_lb(cx, r, &arn).await?;
            Ok(arn)
        }
        Spec::TargetGroup { service } => {
            let hc = &service.health_check;
            let out = c
                .elb
                .create_target_group()
                .name(&r.name)
                .protocol(elb::types::ProtocolEnum::Http)
                .port(i32::from(service.port))
                .vpc_id(cx.phys("vpc")?)
                .target_type(elb::types::TargetTypeEnum::Ip)
                .health_check_protocol(elb::types::ProtocolEnum::Http)
                .health_check_path(&hc.path)
                .health_check_interval_seconds(secs(hc.interval))
                .health_check_timeout_seconds(secs(hc.timeout))
                .healthy_threshold_count(i32::try_from(hc.healthy_threshold).unwrap_or(10))
                .unhealthy_threshold_count(i32::try_from(hc.unhealthy_threshold).unwrap_or(10))
                .matcher(
                    elb::types::Matcher::builder()
                        .http_code(&hc.matcher)
                        .build(),
                )
                .set_tags(Some(elb_tags(cx, r)))
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:CreateTargetGroup"))?;
            let arn = out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .unwrap_or("")
                .to_owned();
            tg_attributes(cx, r, &arn).await?;
            Ok(arn)
        }
        Spec::Listener {
            port,
            certificate,
            default,
            ..
        } => {
            let out = c
                .elb
                .create_listener()
                .load_balancer_arn(cx.phys("alb")?)
                .protocol(protocol(certificate))
                .port(i32::from(*port))
                .set_certificates(certificates(certificate))
                .default_actions(default_action(cx, default)?)
                .set_tags(Some(elb_tags(cx, r)))
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:CreateListener"))?;
            let arn = out
                .listeners()
                .first()
                .and_then(|l| l.listener_arn())
                .unwrap_or("")
                .to_owned();
            converge_rules(cx, r, &arn).await?;
            Ok(arn)
        }
        Spec::TaskDefinition { .. } => register(cx, r).await,
        Spec::Service { service } => {
            let mut request = service_request(cx, r, service, false).await?;
            request.desired_count = Some(count(service.desired_count));
            request.tags = ecs_tags(cx, r);
            let arn = c.services.create(request).await?;
            wait_stable(cx, r).await?;
            Ok(arn)
        }
        _ => Err(Error::Other(format!(
            "compute::create called for {}",
            r.kind
        ))),
    }
}

fn network(cx: &Ctx<'_>) -> Result<ecs::NetworkConfiguration> {
    let private: Vec<String> = (1..=cx.stack.network.private_subnets.len())
        .map(|i| cx.phys(&format!("subnet/private-{i}")))
        .collect::<Result<_>>()?;
    Ok(ecs::NetworkConfiguration::builder()
        .awsvpc_configuration(
            ecs::AwsVpcConfiguration::builder()
                .set_subnets(Some(private))
                .security_groups(cx.phys("sg/ecs")?)
                .assign_public_ip(ecs::AssignPublicIp::Disabled)
                .build()
                .map_err(error::build("a network configuration"))?,
        )
        .build())
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What create and update share (`existing`: an update). The desired count is left out
/// under autoscaling, where it is AWS's to move (an update must not reset it).
pub(crate) async fn service_request(
    cx: &Ctx<'_>,
    r: &Resource,
    service: &berth_spec::Service,
    existing: bool,
) -> Result<ServiceRequest> {
    let d = &service.deployment;
    Ok(ServiceRequest {
        cluster: cx.stack.cluster.clone(),
        name: r.name.clone(),
        task_definition: service.task_family.clone(),
        desired_count: service
            .autoscaling
            .is_none()
            .then(|| count(service.desired_count)),
        network: network(cx)?,
        load_balancer: binding(cx, service, existing).await?,
        deployment: strategy::deployment_configuration(d, &d.strategy),
        grace_period_secs: secs(d.health_check_grace_period),
        tags: Vec::new(),
    })
}

/// The service's load balancer binding. A rolling service's is set at creation (and on an
/// update only to take a traffic-shifting configuration off); a traffic-shifting service's
/// carries the alternate group, the rules and the role, in the order ECS has the two groups
/// in now: they swap roles at each deployment.
async fn binding(
    cx: &Ctx<'_>,
    service: &berth_spec::Service,
    existing: bool,
) -> Result<Option<ecs::LoadBalancer>> {
    let own = cx.phys(&format!("tg/{}", service.name))?;
    let wiring = wiring(cx, service).await?;
    if !existing {
        return Ok(Some(strategy::load_balancer(service, own, wiring)));
    }
    let found =
        cx.c.services
            .describe(&cx.stack.cluster, vec![service.service_name.clone()])
            .await?;
    let current = found.first().and_then(|s| s.load_balancers().first());
    let Some(mut wiring) = wiring else {
        let shifted = current.is_some_and(|l| l.advanced_configuration().is_some());
        return Ok(shifted.then(|| strategy::load_balancer(service, own, None)));
    };
    let mut primary = own;
    if current.and_then(|l| l.target_group_arn()) == Some(wiring.alternate_target_group.as_str()) {
        std::mem::swap(&mut primary, &mut wiring.alternate_target_group);
    }
    Ok(Some(strategy::load_balancer(
        service,
        primary,
        Some(wiring),
    )))
}

/// The ARNs ECS needs to shift `service`'s traffic; `None` for a rolling service.
async fn wiring(cx: &Ctx<'_>, service: &berth_spec::Service) -> Result<Option<Wiring>> {
    let Some(traffic) = &service.deployment.traffic else {
        return Ok(None);
    };
    if !strategy::shifts(&service.deployment.strategy) {
        return Ok(None);
    }
    let (priority, _) = strategy::production_rule(cx.stack, service).ok_or_else(|| {
        Error::Other(format!(
            "service {} has no one production listener rule",
            service.name
        ))
    })?;
    // The listener that routes: HTTPS when the stack has it (HTTP then redirects).
    let listener = if cx.stack.load_balancer.https.is_some() {
        "listener/https"
    } else {
        "listener/http"
    };
    let test_rule = match traffic.test_listener_port {
        Some(_) => Some(
            rule_arn(
                cx,
                &desired::test_listener_id(&service.name),
                strategy::TEST_RULE_PRIORITY,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Some(Wiring {
        alternate_target_group: cx.phys(&desired::alternate_tg_id(&service.name))?,
        production_rule: rule_arn(cx, listener, priority).await?,
        test_rule,
        role: cx.phys(desired::INFRASTRUCTURE_ROLE)?,
    }))
}

/// The ARN of the rule of `priority` on listener `listener` (a logical id).
async fn rule_arn(cx: &Ctx<'_>, listener: &str, priority: u32) -> Result<String> {
    let out =
        cx.c.elb
            .describe_rules()
            .listener_arn(cx.phys(listener)?)
            .send()
            .await
            .map_err(error::call("elasticloadbalancing:DescribeRules"))?;
    let wanted = priority.to_string();
    out.rules()
        .iter()
        .find(|r| r.priority() == Some(wanted.as_str()))
        .and_then(|r| r.rule_arn())
        .map(str::to_owned)
        .ok_or_else(|| Error::Other(format!("{listener} has no rule of priority {priority}")))
}

/// Whether a rule's action forwards to `tg` alone, its alternate group counting as `tg`
/// (ECS moves a traffic-shifting service's rule to it, or weights it between both).
fn forwards_to(action: Option<&elb::types::Action>, tg: &str, alternate: Option<&str>) -> bool {
    let groups = action.map(forward_groups).unwrap_or_default();
    !groups.is_empty() && groups.iter().all(|g| *g == tg || Some(*g) == alternate)
}

/// A new revision of the family (a task definition never changes in place).
pub(crate) async fn register(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    let Spec::TaskDefinition {
        service,
        image,
        secrets,
    } = &r.spec
    else {
        return Err(Error::Other(format!("not a task definition: {}", r.id)));
    };
    let mut container = ecs::ContainerDefinition::builder()
        .name(&service.container_name)
        .image(image)
        .essential(true)
        .port_mappings(
            ecs::PortMapping::builder()
                .container_port(i32::from(service.port))
                .protocol(ecs::TransportProtocol::Tcp)
                .build(),
        )
        .stop_timeout(secs(service.deployment.stop_timeout))
        .log_configuration(
            ecs::LogConfiguration::builder()
                .log_driver(ecs::LogDriver::Awslogs)
                .options("awslogs-group", &service.logs.group)
                .options("awslogs-region", &cx.known.region)
                .options("awslogs-stream-prefix", &service.logs.stream_prefix)
                .build()
                .map_err(error::build("a log configuration"))?,
        );
    for (k, v) in &service.environment {
        container = container.environment(ecs::KeyValuePair::builder().name(k).value(v).build());
    }
    for (name, arn) in secrets {
        container = container.secrets(
            ecs::Secret::builder()
                .name(name)
                .value_from(arn)
                .build()
                .map_err(error::build("a secret"))?,
        );
    }
    if let Some(hc) = &service.container_health_check {
        let mut check = ecs::HealthCheck::builder()
            .set_command(Some(hc.command.clone()))
            .interval(secs(hc.interval))
            .timeout(secs(hc.timeout))
            .retries(i32::try_from(hc.retries).unwrap_or(10));
        if let Some(start) = hc.start_period {
            check = check.start_period(secs(start));
        }
        container = container.health_check(
            check
                .build()
                .map_err(error::build("a container health check"))?,
        );
    }
    let exec = cx.phys("role/execution")?;
    let task_role = cx.phys(&format!("role/task/{}", service.name)).ok();
    let out =
        cx.c.ecs
            .register_task_definition()
            .family(&service.task_family)
            .cpu(service.cpu.to_string())
            .memory(service.memory.to_string())
            .network_mode(ecs::NetworkMode::Awsvpc)
            .requires_compatibilities(ecs::Compatibility::Fargate)
            .execution_role_arn(exec)
            .set_task_role_arn(task_role)
            .container_definitions(container.build())
            .set_tags(Some(ecs_tags(cx, r)))
            .send()
            .await
            .map_err(error::call("ecs:RegisterTaskDefinition"))?;
    Ok(out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap_or("")
        .to_owned())
}

/// Waits until the service runs its desired count in one deployment.
async fn wait_stable(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    if !cx.waits.services {
        return Ok(());
    }
    cx.wait(&r.id, "stable", || async {
        let found =
            cx.c.services
                .describe(&cx.stack.cluster, vec![r.name.clone()])
                .await?;
        Ok(found
            .first()
            .filter(|s| s.deployments().len() <= 1 && s.running_count() == s.desired_count())
            .map(|_| ()))
    })
    .await
}

async fn converge_lb(cx: &Ctx<'_>, r: &Resource, arn: &str) -> Result<()> {
    let Spec::LoadBalancer {
        idle_timeout_secs, ..
    } = &r.spec
    else {
        return Ok(());
    };
    cx.c.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(
            elb::types::LoadBalancerAttribute::builder()
                .key("idle_timeout.timeout_seconds")
                .value(idle_timeout_secs.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(error::call(
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
        ))?;
    let dns = cx
        .wait(&r.id, "active", || async {
            let out =
                cx.c.elb
                    .describe_load_balancers()
                    .load_balancer_arns(arn)
                    .send()
                    .await
                    .map_err(error::call("elasticloadbalancing:DescribeLoadBalancers"))?;
            let lb = out.load_balancers().first();
            let active = lb
                .and_then(|l| l.state())
                .and_then(|s| s.code())
                .is_none_or(|c| *c == elb::types::LoadBalancerStateEnum::Active);
            Ok(lb
                .filter(|_| active)
                .map(|l| l.dns_name().unwrap_or("").to_owned()))
        })
        .await?;
    cx.update_outputs(|o| {
        o.load_balancer_url = Some(format!("http://{dns}"));
        o.load_balancer_dns_name = Some(dns);
    });
    Ok(())
}

async fn tg_attributes(cx: &Ctx<'_>, r: &Resource, arn: &str) -> Result<()> {
    let Spec::TargetGroup { service } = &r.spec else {
        return Ok(());
    };
    cx.c.elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            elb::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(service.deregistration_delay.as_secs().to_string())
                .build(),
        )
        .send()
        .await
        .map_err(error::call(
            "elasticloadbalancing:ModifyTargetGroupAttributes",
        ))?;
    Ok(())
}

/// Makes the listener's path rules exactly the stack's: by priority, modified, created or
/// deleted.
async fn converge_rules(cx: &Ctx<'_>, r: &Resource, listener: &str) -> Result<()> {
    let Spec::Listener { rules, .. } = &r.spec else {
        return Ok(());
    };
    let existing =
        cx.c.elb
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .map_err(error::call("elasticloadbalancing:DescribeRules"))?;
    let existing: Vec<_> = existing
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .cloned()
        .collect();
    let condition = |path: &str| {
        elb::types::RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                elb::types::PathPatternConditionConfig::builder()
                    .values(path)
                    .build(),
            )
            .build()
    };
    for (priority, path, tg) in rules {
        let tg_arn = cx.phys(tg)?;
        let alternate = desired::shifting_alternate(cx.stack, tg)
            .map(|alternate| cx.phys(&alternate))
            .transpose()?;
        let found = existing
            .iter()
            .find(|e| e.priority() == Some(priority.to_string().as_str()));
        match found {
            Some(rule) => {
                let same_path = rule.conditions().iter().any(|c| {
                    c.path_pattern_config()
                        .map(|p| p.values().to_vec())
                        .unwrap_or_else(|| c.values().to_vec())
                        == [path.clone()]
                });
                let same_tg = forwards_to(rule.actions().first(), &tg_arn, alternate.as_deref());
                if !(same_path && same_tg) {
                    cx.c.elb
                        .modify_rule()
                        .rule_arn(rule.rule_arn().unwrap_or(""))
                        .conditions(condition(path))
                        .actions(rule_action(tg_arn, alternate))
                        .send()
                        .await
                        .map_err(error::call("elasticloadbalancing:ModifyRule"))?;
                }
            }
            None => {
                cx.c.elb
                    .create_rule()
                    .listener_arn(listener)
                    .priority(i32::try_from(*priority).unwrap_or(50000))
                    .conditions(condition(path))
                    .actions(rule_action(tg_arn, alternate))
                    .send()
                    .await
                    .map_err(error::call("elasticloadbalancing:CreateRule"))?;
            }
        }
    }
    for rule in &existing {
        let priority = rule.priority().unwrap_or("");
        if !rules.iter().any(|(p, _, _)| p.to_string() == priority) {
            cx.c.elb
                .delete_rule()
                .rule_arn(rule.rule_arn().unwrap_or(""))
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:DeleteRule"))?;
        }
    }
    Ok(())
}

pub(super) async fn update(cx: &Ctx<'_>, r: &Resource, a: &Actual) -> Result<String> {
    let c = cx.c;
    match &r.spec {
        Spec::LoadBalancer { subnets, .. } => {
            c.elb
                .set_subnets()
                .load_balancer_arn(&a.physical)
                .set_subnets(Some(cx.phys_all(subnets)?))
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:SetSubnets"))?;
            c.elb
                .set_security_groups()
                .load_balancer_arn(&a.physical)
                .security_groups(cx.phys("sg/alb")?)
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:SetSecurityGroups"))?;
            converge_lb(cx, r, &a.physical).await?;
        }
        Spec::TargetGroup { service } => {
            let hc = &service.health_check;
            c.elb
                .modify_target_group()
                .target_group_arn(&a.physical)
                .health_check_path(&hc.path)
                .health_check_interval_seconds(secs(hc.interval))
                .health_check_timeout_seconds(secs(hc.timeout))
                .healthy_threshold_count(i32::try_from(hc.healthy_threshold).unwrap_or(10))
                .unhealthy_threshold_count(i32::try_from(hc.unhealthy_threshold).unwrap_or(10))
                .matcher(
                    elb::types::Matcher::builder()
                        .http_code(&hc.matcher)
                        .build(),
                )
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:ModifyTargetGroup"))?;
            tg_attributes(cx, r, &a.physical).await?;
        }
        Spec::Listener {
            port,
            certificate,
            default,
            ..
        } => {
            c.elb
                .modify_listener()
                .listener_arn(&a.physical)
                .protocol(protocol(certificate))
                .port(i32::from(*port))
                .set_certificates(certificates(certificate))
                .default_actions(default_action(cx, default)?)
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:ModifyListener"))?;
            converge_rules(cx, r, &a.physical).await?;
        }
        Spec::TaskDefinition { .. } => return register(cx, r).await,
        Spec::Service { service } => {
            c.services
                .update(service_request(cx, r, service, true).await?)
                .await?;
            wait_stable(cx, r).await?;
        }
        _ => {
            return Err(Error::Other(format!(
                "{} {} cannot change in place",
                r.kind, r.name
            )));
        }
    }
    Ok(a.physical.clone())
}

pub(super) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    use crate::resource::Kind as K;
    let c = cx.c;
    match a.kind {
        K::Cluster => {
            c.ecs
                .delete_cluster()
                .cluster(&a.name)
                .send()
                .await
                .map_err(error::call("ecs:DeleteCluster"))?;
        }
        K::LoadBalancer => {
            c.elb
                .delete_load_balancer()
                .load_balancer_arn(&a.physical)
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:DeleteLoadBalancer"))?;
            cx.wait(&a.id, "deleted", || async {
                match c.elb.describe_load_balancers().names(&a.name).send().await {
                    Ok(out) if out.load_balancers().is_empty() => Ok(Some(())),
                    Ok(_) => Ok(None),
                    Err(e) if error::code(&e) == Some("LoadBalancerNotFound") => Ok(Some(())),
                    Err(e) => Err(error::call("elasticloadbalancing:DescribeLoadBalancers")(e)),
                }
            })
            .await?;
        }
        K::TargetGroup => {
            c.elb
                .delete_target_group()
                .target_group_arn(&a.physical)
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:DeleteTargetGroup"))?;
        }
        K::Listener => {
            c.elb
                .delete_listener()
                .listener_arn(&a.physical)
                .send()
                .await
                .map_err(error::call("elasticloadbalancing:DeleteListener"))?;
        }
        K::TaskDefinition => {
            let arns = c
                .ecs
                .list_task_definitions()
                .family_prefix(&a.name)
                .status(ecs::TaskDefinitionStatus::Active)
                .send()
                .await
                .map_err(error::call("ecs:ListTaskDefinitions"))?;
            for arn in arns.task_definition_arns() {
                // The prefix also matches longer families (`web` and `web-admin`).
                let family = arn.rsplit('/').next().and_then(|f| f.split(':').next());
                if family != Some(a.name.as_str()) {
                    continue;
                }
                c.ecs
                    .deregister_task_definition()
                    .task_definition(arn)
                    .send()
                    .await
                    .map_err(error::call("ecs:DeregisterTaskDefinition"))?;
            }
        }
        K::Service => {
            c.services.delete(&cx.stack.cluster, &a.name).await?;
            cx.wait(&a.id, "inactive", || async {
                let found = c
                    .services
                    .describe(&cx.stack.cluster, vec![a.name.clone()])
                    .await?;
                Ok(found
                    .iter()
                    .all(|s| s.status() != Some("ACTIVE") && s.status() != Some("DRAINING"))
                    .then_some(()))
            })
            .await?;
        }
        _ => {
            return Err(Error::Other(format!(
                "compute::delete called for {}",
                a.kind
            )));
        }
    }
    Ok(())
}
