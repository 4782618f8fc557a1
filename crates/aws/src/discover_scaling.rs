//! The services' scalable targets and target-tracking policies, found by their unique
//! resource ids (`service/<cluster>/<service>`): Application Auto Scaling keeps no tag the
//! engine could search by.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use berth_spec::Stack;

use crate::clients::Clients;
use crate::error::{self, Result};
use crate::resource::{Actual, Attrs, Kind, Value};
use crate::scaling::{self, Metric};

/// Every service of the stack that has a scalable target, whether or not the stack still
/// asks for one (so that a removed `autoscaling` table is deleted).
pub(crate) async fn autoscaling(c: &Clients, stack: &Stack) -> Result<Vec<Actual>> {
    let ids: Vec<String> = stack
        .services
        .iter()
        .map(|s| scaling::resource_id(&stack.cluster, &s.service_name))
        .collect();
    let found = c
        .scaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .set_resource_ids(Some(ids))
        .send()
        .await
        .map_err(error::call(
            "application-autoscaling:DescribeScalableTargets",
        ))?;
    let mut out = Vec::new();
    for target in found.scalable_targets() {
        let Some(service) = stack.services.iter().find(|s| {
            scaling::resource_id(&stack.cluster, &s.service_name) == target.resource_id()
        }) else {
            continue;
        };
        let mut attrs = Attrs::new();
        let mut put = |k: &'static str, v: String| attrs.insert(k, Value::Text(v));
        put("min", target.min_capacity().to_string());
        put("max", target.max_capacity().to_string());
        let policies = c
            .scaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(target.resource_id())
            .policy_names(scaling::policy_name(&service.service_name))
            .send()
            .await
            .map_err(error::call(
                "application-autoscaling:DescribeScalingPolicies",
            ))?;
        // A target without berth's policy (an interrupted `up`) shows an empty metric, which
        // the planner then updates.
        let config = policies
            .scaling_policies()
            .first()
            .and_then(|p| p.target_tracking_scaling_policy_configuration());
        let metric = config
            .and_then(|c| c.predefined_metric_specification())
            .and_then(|m| Metric::from_api(m.predefined_metric_type()));
        put("metric", metric.map_or("", Metric::as_str).to_owned());
        if let Some(config) = config {
            put("target", scaling::target_text(config.target_value()));
            let cooldown = |v: Option<i32>| v.unwrap_or(0).to_string();
            put("scale_in_cooldown", cooldown(config.scale_in_cooldown()));
            put("scale_out_cooldown", cooldown(config.scale_out_cooldown()));
        }
        out.push(Actual {
            id: format!("autoscaling/{}", service.name),
            kind: Kind::Autoscaling,
            name: target.resource_id().to_owned(),
            physical: target.resource_id().to_owned(),
            attrs,
        });
    }
    Ok(out)
}
