//! Operating a provisioned stack: `berth scale SERVICE N -e <aws env>`.

use berth_spec::{Service, Stack};

use crate::clients::Clients;
use crate::error::{self, Error, Result};

/// What `scale` set, and what moves the count afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaled {
    /// The ECS service name.
    pub service: String,
    pub desired_count: u32,
    /// The stack file's count, which the next `up` or `deploy` sets again (none under
    /// autoscaling, where AWS moves the count).
    pub stack_count: Option<u32>,
    /// Autoscaling's (min, max): the scaler moves the count back between them.
    pub autoscaling: Option<(u32, u32)>,
}

/// Sets the service's desired count (UpdateService with the count alone: the revision and
/// the deployment configuration stay as they are).
pub(crate) async fn scale(
    c: &Clients,
    stack: &Stack,
    service: &Service,
    count: u32,
) -> Result<Scaled> {
    let desired = i32::try_from(count)
        .map_err(|_| Error::Other(format!("desired count {count} is too large")))?;
    let sent = c
        .ecs
        .update_service()
        .cluster(&stack.cluster)
        .service(&service.service_name)
        .desired_count(desired)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(Scaled {
            service: service.service_name.clone(),
            desired_count: count,
            stack_count: service
                .autoscaling
                .is_none()
                .then_some(service.desired_count),
            autoscaling: service.autoscaling.as_ref().map(|a| (a.min, a.max)),
        }),
        Err(e) if missing(error::code(&e)) => Err(not_created(stack, service)),
        Err(e) => Err(error::call("ecs:UpdateService")(e)),
    }
}

/// ECS's codes for a service (or its cluster) that is not there.
pub(crate) fn missing(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("ServiceNotFoundException" | "ServiceNotActiveException" | "ClusterNotFoundException")
    )
}

pub(crate) fn not_created(stack: &Stack, service: &Service) -> Error {
    Error::Other(format!(
        "service {} does not exist in cluster {}: `berth up` creates it (once its repository holds an image)",
        service.service_name, stack.cluster
    ))
}
