//! Application Auto Scaling of a service: the engine's own small view of it ([`Scaling`]),
//! filled from the stack's `autoscaling` table, and how it maps onto the API (one scalable
//! target on the service's desired count, one target-tracking policy).
//!
//! A scalable target carries no tag the engine can search by; it is found by its unique
//! resource id, `service/<cluster>/<service>`, the cluster being the stack's.

use aws_sdk_applicationautoscaling::types::MetricType;
use berth_spec::{Autoscaling, ScalingTarget};

/// What a service's scaling asks of AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub min: u32,
    pub max: u32,
    pub metric: Metric,
    /// The value the metric is kept at (percent, or requests per target).
    pub target: f64,
    pub scale_in_cooldown_secs: u32,
    pub scale_out_cooldown_secs: u32,
}

/// The predefined metrics berth tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    /// ALB requests per target of the service's target group.
    Requests,
}

impl Metric {
    /// As the plan shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Memory => "memory",
            Metric::Requests => "requests",
        }
    }

    pub(crate) fn api(self) -> MetricType {
        match self {
            Metric::Cpu => MetricType::EcsServiceAverageCpuUtilization,
            Metric::Memory => MetricType::EcsServiceAverageMemoryUtilization,
            Metric::Requests => MetricType::AlbRequestCountPerTarget,
        }
    }

    pub(crate) fn from_api(metric: &MetricType) -> Option<Metric> {
        match metric {
            MetricType::EcsServiceAverageCpuUtilization => Some(Metric::Cpu),
            MetricType::EcsServiceAverageMemoryUtilization => Some(Metric::Memory),
            MetricType::AlbRequestCountPerTarget => Some(Metric::Requests),
            _ => None,
        }
    }
}

fn cooldown(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl Scaling {
    pub fn from_spec(a: &Autoscaling) -> Scaling {
        let (metric, target) = match a.target {
            ScalingTarget::CpuPercent(v) => (Metric::Cpu, v),
            ScalingTarget::MemoryPercent(v) => (Metric::Memory, v),
            ScalingTarget::RequestsPerTarget(v) => (Metric::Requests, f64::from(v)),
        };
        Scaling {
            min: a.min,
            max: a.max,
            metric,
            target,
            scale_in_cooldown_secs: cooldown(a.scale_in_cooldown),
            scale_out_cooldown_secs: cooldown(a.scale_out_cooldown),
        }
    }
}

/// The scalable target's resource id.
pub fn resource_id(cluster: &str, service_name: &str) -> String {
    format!("service/{cluster}/{service_name}")
}

/// The name of the one target-tracking policy berth puts on a service.
pub fn policy_name(service_name: &str) -> String {
    format!("{service_name}-target-tracking")
}

/// A target value as the plan shows it: `70`, `72.5`.
pub fn target_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// `ALBRequestCountPerTarget`'s resource label, `app/<alb>/<id>/targetgroup/<tg>/<id>`,
/// from the ALB's and the target group's ARNs; `None` if either is not an ELB ARN.
pub fn request_label(alb_arn: &str, tg_arn: &str) -> Option<String> {
    let alb = alb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.split_once(":targetgroup/")?.1;
    (alb.starts_with("app/") && !tg.is_empty()).then(|| format!("{alb}/targetgroup/{tg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_label_joins_the_two_arns_tails() {
        assert_eq!(
            request_label(
                "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/ecs-alb/50dc6c495c0c9188",
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/backend-tg/73e2d6bc24d8a067",
            )
            .as_deref(),
            Some("app/ecs-alb/50dc6c495c0c9188/targetgroup/backend-tg/73e2d6bc24d8a067")
        );
        assert_eq!(request_label("vpc-1", "tg"), None);
        assert_eq!(
            request_label(
                "arn:aws:elasticloadbalancing:r:1:loadbalancer/net/n/1",
                "arn:aws:elasticloadbalancing:r:1:targetgroup/t/2"
            ),
            None
        );
    }

    #[test]
    fn targets_show_without_a_useless_fraction() {
        assert_eq!(target_text(70.0), "70");
        assert_eq!(target_text(72.5), "72.5");
    }
}
