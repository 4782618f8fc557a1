//! `berth deploy SERVICE -e <aws env>`: a new task-definition revision with the image, the
//! service updated to it with the stack's deployment configuration (ROLLING with the
//! circuit breaker), and the rollout watched until it ends.
//!
//! The rollout is read through [`ServiceApi`](crate::ServiceApi): moto runs no rollout
//! (reference/moto.md), so COMPLETED, FAILED and a stuck deployment are tested against a
//! fake that scripts ECS's answers.

use std::time::Instant;

use aws_sdk_ecs::types::{self as ecs, DeploymentRolloutState};
use berth_spec::{Service, Stack};

use crate::desired::{Desired, desired};
use crate::discover::{Snapshot, newest_image};
use crate::error::{Error, Result};
use crate::ops::{Ctx, compute};
use crate::progress::Event;

/// What was deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The new revision's ARN (`…:task-definition/<family>:<n>`).
    pub task_definition: String,
    pub revision: i32,
    pub image: String,
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
) -> Result<Deployed> {
    exists(snapshot, service)?;
    let mut known = cx.known.clone();
    known.images.insert(service.name.clone(), image.clone());
    let wanted = desired(cx.stack, &known);
    let resource = |id: String| {
        wanted
            .resources
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::Other(format!("{id} is not a desired resource")))
    };
    let task_definition =
        compute::register(cx, resource(format!("taskdef/{}", service.name))?).await?;
    let revision = revision(&task_definition);
    update_to(cx, &wanted, service, task_definition.clone()).await?;
    Ok(Deployed {
        task_definition,
        revision,
        image,
    })
}

/// Updates the service to run `task_definition` (an ARN), with the stack's deployment
/// configuration.
pub(crate) async fn update_to(
    cx: &Ctx<'_>,
    wanted: &Desired,
    service: &Service,
    task_definition: String,
) -> Result<()> {
    let id = format!("service/{}", service.name);
    let resource = wanted
        .resources
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| Error::Other(format!("{id} is not a desired resource")))?;
    let mut request = compute::service_request(cx, resource, service)?;
    request.task_definition = task_definition;
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

/// Waits until the deployment of `deployed` is COMPLETED; FAILED (the circuit breaker,
/// with its reason and the service's last events) and the timeout are errors.
pub(crate) async fn watch(cx: &Ctx<'_>, service: &Service, deployed: &Deployed) -> Result<()> {
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
        let elapsed = start.elapsed();
        if elapsed >= cx.waits.timeout {
            return Err(Error::Timeout {
                what: format!("{id} to be rolled out"),
                waited: elapsed,
            });
        }
        (cx.progress)(Event::Waiting {
            id: id.clone(),
            what,
            elapsed,
        });
        tokio::time::sleep(cx.waits.interval).await;
    }
}
