//! A service's scalable target and its target-tracking policy. Both calls are upserts, so
//! creating and updating are the same step.

use aws_sdk_applicationautoscaling::types::{
    PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use super::Ctx;
use crate::error::{self, Error, Result};
use crate::resource::{Actual, Resource, Spec};
use crate::scaling::{self, Metric};

fn capacity(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Registers the target (min/max) and puts the policy; returns the resource id.
pub(super) async fn put(cx: &Ctx<'_>, r: &Resource) -> Result<String> {
    let Spec::Autoscaling { service, scaling } = &r.spec else {
        return Err(Error::Other(format!("scaling::put called for {}", r.kind)));
    };
    let c = &cx.c.scaling;
    c.register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&r.name)
        .min_capacity(capacity(scaling.min))
        .max_capacity(capacity(scaling.max))
        .send()
        .await
        .map_err(error::call(
            "application-autoscaling:RegisterScalableTarget",
        ))?;
    let mut metric =
        PredefinedMetricSpecification::builder().predefined_metric_type(scaling.metric.api());
    if scaling.metric == Metric::Requests {
        let alb = cx.phys("alb")?;
        let tg = cx.phys(&format!("tg/{service}"))?;
        let label = scaling::request_label(&alb, &tg).ok_or_else(|| {
            Error::Other(format!(
                "cannot name target group {tg} of load balancer {alb} for request scaling"
            ))
        })?;
        metric = metric.resource_label(label);
    }
    let metric = metric
        .build()
        .map_err(error::build("a predefined metric specification"))?;
    let config = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(scaling.target)
        .predefined_metric_specification(metric)
        .scale_in_cooldown(capacity(scaling.scale_in_cooldown_secs))
        .scale_out_cooldown(capacity(scaling.scale_out_cooldown_secs))
        .build()
        .map_err(error::build("a target-tracking configuration"))?;
    let service_name = r
        .name
        .rsplit('/')
        .next()
        .unwrap_or(r.name.as_str())
        .to_owned();
    c.put_scaling_policy()
        .policy_name(scaling::policy_name(&service_name))
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&r.name)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(config)
        .send()
        .await
        .map_err(error::call("application-autoscaling:PutScalingPolicy"))?;
    Ok(r.name.clone())
}

/// Deletes the policy (gone already is fine) and deregisters the target.
pub(super) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    let c = &cx.c.scaling;
    let service_name = a.name.rsplit('/').next().unwrap_or(a.name.as_str());
    match c
        .delete_scaling_policy()
        .policy_name(scaling::policy_name(service_name))
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&a.physical)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if error::code(&e) == Some("ObjectNotFoundException") => {}
        Err(e) => {
            return Err(error::call("application-autoscaling:DeleteScalingPolicy")(
                e,
            ));
        }
    }
    c.deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&a.physical)
        .send()
        .await
        .map_err(error::call(
            "application-autoscaling:DeregisterScalableTarget",
        ))?;
    Ok(())
}
