//! What `deploy` and `rollback` share: following a deployment until it COMPLETED or FAILED.
//!
//! It long-polls the running berth (`watch` on the control socket answers when the service
//! changed), prints each new service event and a progress line when the counts change, and
//! returns the outcome: exit 0 COMPLETED, 1 FAILED (with the reason and the last events).
//! Ctrl-C ends only this process: the deployment goes on inside berth.

use berth_local::control::{ControlClient, DeployStarted, Request, Response, WatchedService};
use berth_local::service::{Deployment, ServiceEvent};
use berth_spec::status::{DeploymentStatus, RolloutState};
use chrono::{DateTime, Utc};

use crate::context::Context;
use crate::error::{CliError, CliResult};

/// Events shown when a deployment failed.
const LAST_EVENTS: usize = 8;

pub async fn follow(cx: &Context, client: &mut ControlClient, started: DeployStarted) -> CliResult {
    let id = started.deployment_id.clone();
    if !cx.output.is_json() {
        cx.output.line(format!(
            "{}: deployment {id} of {} started",
            started.service, started.task_definition
        ));
    }
    let mut since = 0;
    let mut shown_until: Option<DateTime<Utc>> = None;
    let mut last_progress = String::new();
    loop {
        let watched = watch(client, &started.service, since).await?;
        since = watched.version;
        let deployment = watched
            .deployments
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| {
                CliError::Failed(anyhow::anyhow!(
                    "berth no longer knows deployment {id} (more recent ones replaced it)"
                ))
            })?;
        if !cx.output.is_json() {
            // Events are newest first; the ones before this deployment are old news.
            let since_at = shown_until.unwrap_or(deployment.created_at);
            let mut fresh: Vec<&ServiceEvent> = watched
                .status
                .events
                .iter()
                .filter(|e| e.created_at >= since_at && Some(e.created_at) != shown_until)
                .collect();
            fresh.reverse();
            for event in &fresh {
                cx.output.line(format!(
                    "{}  {}",
                    event.created_at.format("%H:%M:%S"),
                    event.message
                ));
            }
            if let Some(newest) = fresh.last() {
                shown_until = Some(newest.created_at);
            }
            let progress = progress(&watched, deployment);
            if progress != last_progress {
                cx.output.line(&progress);
                last_progress = progress;
            }
        }
        match deployment.rollout_state {
            // A newer deployment replaced it before it finished (another `berth deploy`).
            RolloutState::InProgress if deployment.status == DeploymentStatus::Inactive => {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "deployment {id} was replaced by deployment {} before it completed",
                    watched
                        .status
                        .deployments
                        .first()
                        .map_or("?", |d| d.id.as_str())
                )));
            }
            RolloutState::InProgress => continue,
            RolloutState::Completed => {
                if cx.output.is_json() {
                    cx.output.json(deployment)?;
                } else {
                    cx.output.line(format!(
                        "deployment {id} completed: {}",
                        deployment.task_definition
                    ));
                }
                return Ok(());
            }
            RolloutState::Failed => return Err(failed(deployment, &watched)),
        }
    }
}

async fn watch(
    client: &mut ControlClient,
    service: &str,
    since: u64,
) -> Result<WatchedService, CliError> {
    let request = Request::Watch {
        service: service.to_owned(),
        since,
    };
    match client
        .request(&request)
        .await
        .map_err(|e| CliError::Failed(anyhow::Error::new(e).context("lost the running berth")))?
    {
        Response::Service(watched) => Ok(watched),
        Response::Error { message } => Err(CliError::Failed(anyhow::anyhow!(message))),
        other => Err(CliError::Failed(anyhow::anyhow!(
            "berth answered the watch request with {other:?}"
        ))),
    }
}

/// `backend:2 2/2 running, 0 pending · backend:1 (ACTIVE) 1 running`, after the stage of a
/// blue/green, canary or linear deployment (`BAKE_TIME · ...`).
fn progress(watched: &WatchedService, deployment: &Deployment) -> String {
    let mut parts: Vec<String> = deployment.lifecycle_stage.iter().cloned().collect();
    parts.push(format!(
        "{} {}/{} running, {} pending",
        deployment.task_definition,
        deployment.running_count,
        deployment.desired_count,
        deployment.pending_count
    ));
    for other in &watched.status.deployments {
        if other.id != deployment.id {
            parts.push(format!(
                "{} ({}) {} running",
                other.task_definition, other.status, other.running_count
            ));
        }
    }
    parts.join(" · ")
}

/// The failure as the error the CLI prints: why, what happens now, the last events.
fn failed(deployment: &Deployment, watched: &WatchedService) -> CliError {
    let primary = watched.status.deployments.first();
    let next = match primary {
        Some(p) if p.id != deployment.id && p.rollback => format!(
            "; rolling back with deployment {} ({})",
            p.id, p.task_definition
        ),
        _ => "; it launches no more tasks".to_owned(),
    };
    let events: Vec<String> = watched
        .status
        .events
        .iter()
        .take(LAST_EVENTS)
        .rev()
        .map(|e| format!("  {}  {}", e.created_at.format("%H:%M:%S"), e.message))
        .collect();
    CliError::Failed(anyhow::anyhow!(
        "deployment {} of {} FAILED: {}{next}\nlast events:\n{}",
        deployment.id,
        deployment.task_definition,
        deployment.rollout_state_reason,
        events.join("\n")
    ))
}
