//! `berth deploy SERVICE -e <aws env>`: a new task-definition revision with the image, the
//! service updated to it with the stack's deployment configuration (its strategy, or
//! `--strategy` once: ROLLING with the circuit breaker, or BLUE_GREEN, CANARY, LINEAR with
//! their bakes), and the rollout watched until it ends.
//!
//! A rolling deployment is watched through DescribeServices (`rolloutState`); a
//! traffic-shifting one through the service's deployment history, which says its lifecycle
//! stage (S3.10) and its rollback (S2.15). Both are read through
//! [`ServiceApi`](crate::ServiceApi): moto runs no rollout (reference/moto.md), so COMPLETED,
//! FAILED, a rollback and a stuck deployment are tested against a fake that scripts ECS's
//! answers.

use std::time::Instant;

use aws_sdk_ecs::types::{self as ecs, DeploymentRolloutState, ServiceDeploymentStatus as S};
use berth_spec::status::DeploymentStrategy;
use berth_spec::{Service, Stack, Strategy};

use crate::desired::{Desired, desired};
use crate::discover::{Snapshot, newest_image};
use crate::error::{Error, Result};
use crate::ops::{Ctx, compute};
use crate::progress::Event;
use crate::services::DeploymentRecord;
use crate::strategy;

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The new revision's ARN (`…:task-definition/<family>:<n>`).
    pub task_definition: String,
    pub revision: i32,
    pub image: String,
    /// The strategy it was deployed with: how its rollout is watched.
    pub strategy: DeploymentStrategy,
    /// The service's deployments (ARNs) from before this one, which the watch of a
    /// blue/green, canary or linear deployment looks past: a rollback deploys an earlier
    /// revision again, whose earlier deployment is not this one.
    pub earlier: Vec<String>,
}

/// The stack's service named `name` (its key or its ECS name).
pub(crate) fn find<'s>(stack: &'s Stack, name: &str) -> Result<&'s Service> {
    stack
        .services
        .iter()
        .find(|s| s.name == name || s.service_name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
            Error::Other(format!(
                "no service `{name}` in the stack (it has: {})",
                known.join(", ")
            ))
        })
}

/// The image to deploy: `image` as a full reference (it holds `/` or `@`), as a tag of the
/// service's repository, or the repository's newest image.
pub(crate) async fn image(
    cx: &Ctx<'_>,
    snapshot: &Snapshot,
    service: &Service,
    image: Option<&str>,
) -> Result<String> {
    if let Some(reference) = image.filter(|i| i.contains('/') || i.contains('@')) {
        return Ok(reference.to_owned());
    }
    let repo = &service.repository;
    if snapshot.get(&format!("repo/{}", service.name)).is_none() {
        return Err(Error::Other(format!(
            "repository {repo} does not exist: run `berth up` for this environment first"
        )));
    }
    let uri = format!(
        "{}.dkr.ecr.{}.amazonaws.com/{repo}",
        cx.known.account_id, cx.known.region
    );
    newest_image(cx.c, repo, &uri, image).await?.ok_or_else(|| {
        Error::Other(match image {
            Some(tag) => format!("repository {repo} has no image tagged {tag}"),
            None => format!("repository {repo} holds no image: push one first"),
        })
    })
}

/// The service's absence said with what creates it.
pub(crate) fn exists(snapshot: &Snapshot, service: &Service) -> Result<()> {
    if snapshot.get(&format!("service/{}", service.name)).is_none() {
        return Err(Error::Other(format!(
            "service {} does not exist yet: `berth up` creates it with the newest image",
            service.service_name
        )));
    }
    Ok(())
}

/// Registers the revision and updates the service to it; returns what was deployed.
pub(crate) async fn start(
    cx: &Ctx<'_>,
    snapshot: &Snapshot,
    service: &Service,
    image: String,
    strategy: &Strategy,
) -> Result<Deployed> {
    exists(snapshot, service)?;
    let mut known = cx.known.clone();
    known.images.insert(service.name.clone(), image.clone());
    let wanted = desired(cx.stack, &known);
    let task_definition =
        compute::register(cx, wanted.resource(&format!("taskdef/{}", service.name))?).await?;
    let revision = revision(&task_definition);
    update_to(cx, &wanted, service, task_definition.clone(), strategy).await?;
    Ok(Deployed {
        task_definition,
        revision,
        image,
        strategy: strategy::kind(strategy),
        // A new revision: no deployment of it before this one.
        earlier: Vec::new(),
    })
}

/// Updates the service to run `task_definition` (an ARN), with the stack's deployment
/// configuration and `strategy`.
pub(crate) async fn update_to(
    cx: &Ctx<'_>,
    wanted: &Desired,
    service: &Service,
    task_definition: String,
    strategy: &Strategy,
) -> Result<()> {
    let resource = wanted.resource(&format!("service/{}", service.name))?;
    let mut request = compute::service_request(cx, resource, service, true).await?;
    request.task_definition = task_definition;
    request.deployment = strategy::deployment_configuration(&service.deployment, strategy);
    cx.c.services.update(request).await
}

/// The revision number at the end of a task definition's ARN (`…:backend-task:3` → 3).
pub(crate) fn revision(task_definition: &str) -> i32 {
    task_definition
        .rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Where a rollout stands, from the service's deployments.
#[derive(Debug, PartialEq, Eq)]
enum Rollout {
    Completed,
    Failed(String),
    InProgress(String),
}

fn rollout(service: &ecs::Service, task_definition: &str) -> Rollout {
    let ours = service
        .deployments()
        .iter()
        .find(|d| d.task_definition() == Some(task_definition));
    let Some(ours) = ours else {
        return Rollout::Failed(format!(
            "the service has no deployment of {task_definition} any more"
        ));
    };
    let progress = format!(
        "{} of {} running",
        ours.running_count(),
        ours.desired_count()
    );
    match ours.rollout_state() {
        Some(DeploymentRolloutState::Completed) => Rollout::Completed,
        Some(DeploymentRolloutState::Failed) => Rollout::Failed(
            ours.rollout_state_reason()
                .unwrap_or("the deployment failed")
                .to_owned(),
        ),
        Some(_) => Rollout::InProgress(progress),
        // Without a rollout state (no circuit breaker; moto): done once it is the only
        // deployment and runs its count.
        None if service.deployments().len() == 1
            && ours.running_count() == ours.desired_count() =>
        {
            Rollout::Completed
        }
        None => Rollout::InProgress(progress),
    }
}

/// Where a traffic-shifting deployment stands, from its record in the service's history
/// (`None`: not listed yet) and the last stage it was seen in before a rollback began.
fn shift(ours: Option<&DeploymentRecord>, last_stage: Option<&str>) -> Rollout {
    let Some(ours) = ours else {
        return Rollout::InProgress("listed by ECS".to_owned());
    };
    let during = last_stage
        .map(|s| format!(" during {s}"))
        .unwrap_or_default();
    let reason = if ours.reason.is_empty() {
        "ECS gave no reason"
    } else {
        ours.reason.as_str()
    };
    match &ours.status {
        S::Successful => Rollout::Completed,
        S::RollbackSuccessful => Rollout::Failed(format!(
            "ECS rolled it back{during}, traffic is on the previous revision: {reason}"
        )),
        S::RollbackFailed => {
            Rollout::Failed(format!("ECS could not roll it back{during}: {reason}"))
        }
        S::Stopped => Rollout::Failed(format!("it was stopped{during}: {reason}")),
        S::RollbackRequested | S::RollbackInProgress => {
            Rollout::InProgress(format!("rolled back ({}{during})", ours.status.as_str()))
        }
        status => Rollout::InProgress(format!(
            "rolled out ({})",
            ours.lifecycle_stage.as_deref().unwrap_or(status.as_str())
        )),
    }
}

/// Waits until the deployment of `deployed` is COMPLETED (SUCCESSFUL); FAILED (the circuit
/// breaker, with its reason and the service's last events), a rollback (with the stage it
/// happened in) and the timeout are errors.
pub(crate) async fn watch(cx: &Ctx<'_>, service: &Service, deployed: &Deployed) -> Result<()> {
    if deployed.strategy != DeploymentStrategy::Rolling {
        return watch_shift(cx, service, deployed).await;
    }
    let id = format!("service/{}", service.name);
    let start = Instant::now();
    loop {
        let found =
            cx.c.services
                .describe(&cx.stack.cluster, vec![service.service_name.clone()])
                .await?;
        let current = found
            .first()
            .ok_or_else(|| Error::Other(format!("service {} disappeared", service.service_name)))?;
        let what = match rollout(current, &deployed.task_definition) {
            Rollout::Completed => return Ok(()),
            Rollout::Failed(reason) => {
                let events: Vec<String> = current
                    .events()
                    .iter()
                    .take(5)
                    .filter_map(|e| e.message().map(str::to_owned))
                    .collect();
                return Err(Error::Rollout {
                    service: service.service_name.clone(),
                    revision: deployed.revision,
                    reason,
                    events,
                });
            }
            Rollout::InProgress(progress) => format!("rolled out ({progress})"),
        };
        pause(cx, &id, "rolled out", start, what).await?;
    }
}

/// Between two polls of something still moving: the timeout (`{id} to be {waited_for}`),
/// else `what` as progress and a pause.
pub(crate) async fn pause(
    cx: &Ctx<'_>,
    id: &str,
    waited_for: &str,
    start: Instant,
    what: String,
) -> Result<()> {
    let elapsed = start.elapsed();
    if elapsed >= cx.waits.timeout {
        return Err(Error::Timeout {
            what: format!("{id} to be {waited_for}"),
            waited: elapsed,
        });
    }
    (cx.progress)(Event::Waiting {
        id: id.to_owned(),
        what,
        elapsed,
    });
    tokio::time::sleep(cx.waits.interval).await;
    Ok(())
}

/// [`watch`] of a blue/green, canary or linear deployment: its record in the service's
/// deployment history, progress by lifecycle stage.
async fn watch_shift(cx: &Ctx<'_>, service: &Service, deployed: &Deployed) -> Result<()> {
    let id = format!("service/{}", service.name);
    let start = Instant::now();
    let mut last_stage: Option<String> = None;
    loop {
        let history =
            cx.c.services
                .history(&cx.stack.cluster, &service.service_name)
                .await?;
        // Newest first: the latest deployment of this revision, not one from before.
        let ours = history.iter().find(|d| {
            d.task_definition == deployed.task_definition && !deployed.earlier.contains(&d.arn)
        });
        if let Some(d) = ours
            && matches!(d.status, S::Pending | S::InProgress)
            && d.lifecycle_stage.is_some()
        {
            last_stage.clone_from(&d.lifecycle_stage);
        }
        let what = match shift(ours, last_stage.as_deref()) {
            Rollout::Completed => return Ok(()),
            Rollout::Failed(reason) => {
                return Err(Error::Rollout {
                    service: service.service_name.clone(),
                    revision: deployed.revision,
                    reason,
                    events: Vec::new(),
                });
            }
            Rollout::InProgress(what) => what,
        };
        pause(cx, &id, "rolled out", start, what).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: S, stage: Option<&str>, reason: &str) -> DeploymentRecord {
        DeploymentRecord {
            arn: "arn:d1".into(),
            status,
            task_definition: "arn:td/backend-task:2".into(),
            created_at: None,
            finished_at: None,
            reason: reason.into(),
            lifecycle_stage: stage.map(str::to_owned),
        }
    }

    #[test]
    fn a_shifting_deployment_is_read_from_its_status_and_stage() {
        let cases: [(&str, Option<DeploymentRecord>, Option<&str>, Rollout); 7] = [
            (
                "not listed yet",
                None,
                None,
                Rollout::InProgress("listed by ECS".into()),
            ),
            (
                "in progress: its stage",
                Some(record(S::InProgress, Some("BAKE_TIME"), "")),
                Some("BAKE_TIME"),
                Rollout::InProgress("rolled out (BAKE_TIME)".into()),
            ),
            (
                "pending without a stage",
                Some(record(S::Pending, None, "")),
                None,
                Rollout::InProgress("rolled out (PENDING)".into()),
            ),
            (
                "rolling back: still watched",
                Some(record(S::RollbackInProgress, None, "")),
                Some("BAKE_TIME"),
                Rollout::InProgress("rolled back (ROLLBACK_IN_PROGRESS during BAKE_TIME)".into()),
            ),
            (
                "rolled back: failed, with the stage and the reason",
                Some(record(S::RollbackSuccessful, None, "alarm went off")),
                Some("BAKE_TIME"),
                Rollout::Failed(
                    "ECS rolled it back during BAKE_TIME, traffic is on the previous revision: alarm went off".into(),
                ),
            ),
            (
                "rollback failed",
                Some(record(S::RollbackFailed, None, "")),
                None,
                Rollout::Failed("ECS could not roll it back: ECS gave no reason".into()),
            ),
            (
                "successful",
                Some(record(S::Successful, None, "")),
                Some("CLEAN_UP"),
                Rollout::Completed,
            ),
        ];
        for (name, ours, last, expected) in cases {
            assert_eq!(shift(ours.as_ref(), last), expected, "{name}");
        }
    }
}
