//! `berth rollback SERVICE -e <aws env>`: a deployment in progress is stopped with
//! StopServiceDeployment(ROLLBACK), and ECS returns to the revision it started from; on a
//! settled service the previous completed revision is deployed again.
//!
//! Which one is decided by [`choose`] from the service's history (pure, table-tested); the
//! watching that follows reads the history through [`ServiceApi`](crate::ServiceApi), which
//! moto does not emulate, so it is tested against the fake.

use std::time::Instant;

use aws_sdk_ecs::types::ServiceDeploymentStatus as S;
use berth_spec::Service;

use crate::deploy::{self, Deployed};
use crate::error::{Error, Result};
use crate::ops::Ctx;
use crate::services::DeploymentRecord;

/// What a rollback does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Stop this deployment (its ARN) with ROLLBACK.
    Stop(String),
    /// Deploy this earlier task definition (its ARN) again.
    Redeploy(String),
}

/// What `rollback` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolledBack {
    /// The deployment in progress (its ARN) was stopped with ROLLBACK.
    Stopped { deployment: String },
    /// The service was updated to the previous completed revision.
    Redeployed(Deployed),
}

/// The history is newest first. A deployment still running is stopped; otherwise the
/// newest SUCCESSFUL deployment is what runs, and the one before it with another task
/// definition is what to return to.
pub(crate) fn choose(service: &str, history: &[DeploymentRecord]) -> Result<Choice> {
    if let Some(running) = history
        .iter()
        .find(|d| matches!(d.status, S::Pending | S::InProgress))
    {
        return Ok(Choice::Stop(running.arn.clone()));
    }
    let mut completed = history.iter().filter(|d| d.status == S::Successful);
    let current = completed.next().ok_or_else(|| nothing(service))?;
    completed
        .find(|d| d.task_definition != current.task_definition && !d.task_definition.is_empty())
        .map(|d| Choice::Redeploy(d.task_definition.clone()))
        .ok_or_else(|| nothing(service))
}

fn nothing(service: &str) -> Error {
    Error::NothingToRollBack {
        service: service.to_owned(),
    }
}

/// Waits until the stopped deployment is ROLLBACK_SUCCESSFUL (or STOPPED); ROLLBACK_FAILED
/// is [`Error::Rollout`]; the timeout is [`Error::Timeout`].
pub(crate) async fn watch_stop(cx: &Ctx<'_>, service: &Service, deployment: &str) -> Result<()> {
    let id = format!("service/{}", service.name);
    let start = Instant::now();
    loop {
        let history =
            cx.c.services
                .history(&cx.stack.cluster, &service.service_name)
                .await?;
        let ours = history
            .iter()
            .find(|d| d.arn == deployment)
            .ok_or_else(|| {
                Error::Other(format!(
                    "deployment {deployment} is not in the history of {} any more",
                    service.service_name
                ))
            })?;
        match &ours.status {
            S::RollbackSuccessful | S::Stopped => return Ok(()),
            S::RollbackFailed => {
                return Err(Error::Rollout {
                    service: service.service_name.clone(),
                    revision: deploy::revision(&ours.task_definition),
                    reason: if ours.reason.is_empty() {
                        "the rollback failed".to_owned()
                    } else {
                        ours.reason.clone()
                    },
                    events: Vec::new(),
                });
            }
            _ => {}
        }
        let what = format!("rolled back ({})", ours.status.as_str());
        deploy::pause(cx, &id, "rolled back", start, what).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(arn: &str, status: S, revision: u32) -> DeploymentRecord {
        DeploymentRecord {
            arn: arn.to_owned(),
            status,
            task_definition: format!("arn:td/backend-task:{revision}"),
            created_at: None,
            finished_at: None,
            reason: String::new(),
            lifecycle_stage: None,
        }
    }

    #[test]
    fn a_rollback_stops_what_runs_or_returns_to_the_previous_completed_revision() {
        let cases: [(&str, Vec<DeploymentRecord>, Option<Choice>); 6] = [
            (
                "in progress: stopped",
                vec![
                    record("d3", S::InProgress, 3),
                    record("d2", S::Successful, 2),
                ],
                Some(Choice::Stop("d3".into())),
            ),
            (
                "pending: stopped",
                vec![record("d2", S::Pending, 2), record("d1", S::Successful, 1)],
                Some(Choice::Stop("d2".into())),
            ),
            (
                "settled: the completed revision before the running one",
                vec![
                    record("d3", S::Successful, 3),
                    record("d2", S::RollbackSuccessful, 2),
                    record("d1", S::Successful, 1),
                ],
                Some(Choice::Redeploy("arn:td/backend-task:1".into())),
            ),
            (
                "the same revision deployed twice is skipped",
                vec![
                    record("d3", S::Successful, 2),
                    record("d2", S::Successful, 2),
                    record("d1", S::Successful, 1),
                ],
                Some(Choice::Redeploy("arn:td/backend-task:1".into())),
            ),
            (
                "one release: nothing to return to",
                vec![record("d1", S::Successful, 1)],
                None,
            ),
            ("no history", vec![], None),
        ];
        for (name, history, expected) in cases {
            let got = choose("backend-service", &history);
            match expected {
                Some(choice) => assert_eq!(got.ok(), Some(choice), "{name}"),
                None => assert!(
                    matches!(got, Err(Error::NothingToRollBack { .. })),
                    "{name}: {got:?}"
                ),
            }
        }
    }
}
