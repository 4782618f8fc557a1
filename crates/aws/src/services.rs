//! The ECS service calls (describe, create, update, delete; the deployment history and
//! StopServiceDeployment) behind a trait.
//!
//! Why a trait: moto's `describe_services` leaves out the deployment configuration (so the
//! circuit breaker) and the health-check grace period, and it runs no rollout
//! (reference/moto.md). The engine's handling of those is tested against a fake of this
//! trait; everything else goes to moto. [`SdkServices`] is the real thing.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_ecs::types as ecs;
use chrono::{DateTime, Utc};

use crate::error::{self, Result};

/// A boxed future, so that the trait can be used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What berth asks of a service, at creation or on update.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequest {
    pub cluster: String,
    pub name: String,
    /// The family: the service runs its latest revision.
    pub task_definition: String,
    /// `None` on an update leaves the count alone (autoscaling moves it).
    pub desired_count: Option<i32>,
    pub network: ecs::NetworkConfiguration,
    /// At creation; on an update only to change a traffic-shifting binding (`None` leaves
    /// the binding as it is).
    pub load_balancer: Option<ecs::LoadBalancer>,
    pub deployment: ecs::DeploymentConfiguration,
    pub grace_period_secs: i32,
    /// Only at creation.
    pub tags: Vec<ecs::Tag>,
}

/// One deployment of a service's history (ListServiceDeployments, with the task definition
/// of its target revision from DescribeServiceRevisions).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRecord {
    /// The service deployment's ARN.
    pub arn: String,
    pub status: ecs::ServiceDeploymentStatus,
    /// The task definition (ARN) the deployment rolls out.
    pub task_definition: String,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub reason: String,
    /// Where a blue/green, canary or linear deployment stands (S3.10: `BAKE_TIME`), from
    /// DescribeServiceDeployments; for deployments that have not ended only.
    pub lifecycle_stage: Option<String>,
}

/// Whether a deployment in this status has ended (it moves no more).
pub(crate) fn ended(status: &ecs::ServiceDeploymentStatus) -> bool {
    use ecs::ServiceDeploymentStatus as S;
    matches!(
        status,
        S::Successful | S::Stopped | S::RollbackSuccessful | S::RollbackFailed
    )
}

/// The ECS service API as the engine uses it.
pub trait ServiceApi: Debug + Send + Sync {
    /// The services of `cluster` among `names` that exist (any status).
    fn describe<'a>(
        &'a self,
        cluster: &'a str,
        names: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<ecs::Service>>>;
    /// Creates the service; returns its ARN.
    fn create(&self, request: ServiceRequest) -> BoxFuture<'_, Result<String>>;
    fn update(&self, request: ServiceRequest) -> BoxFuture<'_, Result<()>>;
    /// Deletes the service, stopping its tasks (`force`).
    fn delete<'a>(&'a self, cluster: &'a str, name: &'a str) -> BoxFuture<'a, Result<()>>;
    /// The service's deployments, newest first.
    fn history<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeploymentRecord>>>;
    /// StopServiceDeployment with ROLLBACK: ECS returns the service to the revision the
    /// deployment started from.
    fn roll_back<'a>(&'a self, deployment_arn: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// [`ServiceApi`] through the SDK.
#[derive(Debug, Clone)]
pub struct SdkServices(pub(crate) aws_sdk_ecs::Client);

impl ServiceApi for SdkServices {
    fn describe<'a>(
        &'a self,
        cluster: &'a str,
        names: Vec<String>,
    ) -> BoxFuture<'a, Result<Vec<ecs::Service>>> {
        Box::pin(async move {
            let out = self
                .0
                .describe_services()
                .cluster(cluster)
                .set_services(Some(names))
                .send()
                .await
                .map_err(error::call("ecs:DescribeServices"))?;
            Ok(out.services().to_vec())
        })
    }

    fn create(&self, r: ServiceRequest) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let out = self
                .0
                .create_service()
                .cluster(r.cluster)
                .service_name(r.name)
                .task_definition(r.task_definition)
                .set_desired_count(r.desired_count)
                .launch_type(ecs::LaunchType::Fargate)
                .network_configuration(r.network)
                .set_load_balancers(r.load_balancer.map(|l| vec![l]))
                .deployment_configuration(r.deployment)
                .health_check_grace_period_seconds(r.grace_period_secs)
                .set_tags(Some(r.tags))
                .send()
                .await
                .map_err(error::call("ecs:CreateService"))?;
            Ok(out
                .service()
                .and_then(|s| s.service_arn())
                .unwrap_or("")
                .to_owned())
        })
    }

    fn update(&self, r: ServiceRequest) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.0
                .update_service()
                .cluster(r.cluster)
                .service(r.name)
                .task_definition(r.task_definition)
                .set_desired_count(r.desired_count)
                .network_configuration(r.network)
                .set_load_balancers(r.load_balancer.map(|l| vec![l]))
                .deployment_configuration(r.deployment)
                .health_check_grace_period_seconds(r.grace_period_secs)
                .send()
                .await
                .map_err(error::call("ecs:UpdateService"))?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, cluster: &'a str, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.0
                .delete_service()
                .cluster(cluster)
                .service(name)
                .force(true)
                .send()
                .await
                .map_err(error::call("ecs:DeleteService"))?;
            Ok(())
        })
    }

    fn history<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeploymentRecord>>> {
        Box::pin(async move {
            let mut briefs = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .0
                    .list_service_deployments()
                    .cluster(cluster)
                    .service(name)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(error::call("ecs:ListServiceDeployments"))?;
                briefs.extend(page.service_deployments().iter().cloned());
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let revisions: Vec<String> = briefs
                .iter()
                .filter_map(|b| b.target_service_revision_arn().map(str::to_owned))
                .collect();
            let mut task_definitions = std::collections::BTreeMap::new();
            // DescribeServiceRevisions takes at most 20 revisions a call.
            for chunk in revisions.chunks(20) {
                let out = self
                    .0
                    .describe_service_revisions()
                    .set_service_revision_arns(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(error::call("ecs:DescribeServiceRevisions"))?;
                for r in out.service_revisions() {
                    if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                        task_definitions.insert(arn.to_owned(), td.to_owned());
                    }
                }
            }
            // The stage of the deployments that have not ended (DescribeServiceDeployments,
            // 20 a call); ListServiceDeployments does not say it.
            let open: Vec<String> = briefs
                .iter()
                .filter(|b| !b.status().is_some_and(ended))
                .filter_map(|b| b.service_deployment_arn().map(str::to_owned))
                .collect();
            let mut stages = std::collections::BTreeMap::new();
            for chunk in open.chunks(20) {
                let out = self
                    .0
                    .describe_service_deployments()
                    .set_service_deployment_arns(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(error::call("ecs:DescribeServiceDeployments"))?;
                for d in out.service_deployments() {
                    if let (Some(arn), Some(stage)) =
                        (d.service_deployment_arn(), d.lifecycle_stage())
                    {
                        stages.insert(arn.to_owned(), stage.as_str().to_owned());
                    }
                }
            }
            let mut records: Vec<DeploymentRecord> = briefs
                .iter()
                .map(|b| DeploymentRecord {
                    arn: b.service_deployment_arn().unwrap_or("").to_owned(),
                    status: b
                        .status()
                        .cloned()
                        .unwrap_or(ecs::ServiceDeploymentStatus::Pending),
                    task_definition: b
                        .target_service_revision_arn()
                        .and_then(|r| task_definitions.get(r))
                        .cloned()
                        .unwrap_or_default(),
                    created_at: crate::status::time(b.created_at()),
                    finished_at: crate::status::time(b.finished_at()),
                    reason: b.status_reason().unwrap_or("").to_owned(),
                    lifecycle_stage: b
                        .service_deployment_arn()
                        .and_then(|arn| stages.get(arn))
                        .cloned(),
                })
                .collect();
            records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            Ok(records)
        })
    }

    fn roll_back<'a>(&'a self, deployment_arn: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.0
                .stop_service_deployment()
                .service_deployment_arn(deployment_arn)
                .stop_type(ecs::StopServiceDeploymentStopType::Rollback)
                .send()
                .await
                .map_err(error::call("ecs:StopServiceDeployment"))?;
            Ok(())
        })
    }
}
