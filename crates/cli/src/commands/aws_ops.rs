//! The operating verbs on an environment with `runtime = "aws"` (`scale`, `param`, `status`,
//! `deployments`, `rollback`, `logs`): each local
//! verb hands over here when `-e` names an AWS environment, and renders the AWS engine's
//! answer as it renders the running berth's.

use berth_spec::{Environment, Stack};

use crate::context::Context;
use crate::error::CliResult;

/// Without the AWS engine, each verb says how to build it in (exit 2).
#[cfg(not(feature = "aws"))]
macro_rules! not_built {
    ($($verb:ident($($arg:ty),*);)*) => {$(
        pub async fn $verb(
            _: &Context,
            _: &Stack,
            environment: &Environment,
            $(_: $arg),*
        ) -> CliResult {
            Err(crate::commands::aws::not_built(environment))
        }
    )*};
}

#[cfg(not(feature = "aws"))]
not_built! {
    scale(&crate::commands::scale::Args);
    param(crate::commands::param::Args);
    status(&crate::commands::status::Args);
    deployments(&crate::commands::deployments::Args);
    rollback(&crate::commands::rollback::Args);
    logs(&crate::commands::logs::Args, Option<i64>);
}

#[cfg(feature = "aws")]
pub use engine::{deployments, logs, param, rollback, scale, status};

#[cfg(feature = "aws")]
mod engine {
    use anyhow::anyhow;
    use berth_aws::status::{DeploymentState, ServiceState, StackStatus, TargetView, TaskState};
    use berth_aws::{Options, Param, ParamSummary, PutParam, RolledBack};
    use berth_local::control::{StatusReport, TargetGroupStatus};
    use berth_local::params::{Parameter, ParameterSummary, ParameterValue, SecretString};
    use berth_local::service::{
        Deployment, ServiceEvent, ServiceStatus, ServiceTaskStatus, TargetHealthView,
    };
    use berth_local::task::{DesiredStatus, StopCode, TaskId, TaskSnapshot, TaskStatus};
    use berth_spec::status::RolloutState;

    use super::*;
    use crate::commands::aws::{connect, failed};
    use crate::commands::param::{self as local, ParamCommand};
    use crate::error::CliError;
    use crate::output::{Paint, Table};

    /// `berth logs SERVICE -e <aws env>`: FilterLogEvents over the service's log group,
    /// printed as the local store's events are.
    pub async fn logs(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: &crate::commands::logs::Args,
        since: Option<i64>,
    ) -> CliResult {
        let engine = connect(environment).await?;
        if args.follow {
            return follow(cx, &engine, stack, args, since).await;
        }
        let lines = engine
            .logs(stack, &args.service, since, args.filter.as_deref())
            .await
            .map_err(failed)?;
        for line in &lines {
            print_line(cx, line)?;
        }
        if lines.is_empty() && !cx.output.is_json() {
            let group = crate::commands::running::find_service(cx, stack, &args.service)
                .map_or("", |s| s.logs.group.as_str());
            cx.output
                .note(format!("no log events in {group} (with these options)"));
        }
        Ok(())
    }

    fn print_line(cx: &Context, line: &berth_aws::LogLine) -> CliResult {
        let event = berth_local::logs::LogEvent {
            timestamp: line.timestamp,
            stream: line.stream.clone(),
            message: line.message.clone(),
        };
        crate::commands::logs::print_event(cx, &event)
    }

    /// How often `logs -F` asks CloudWatch (FilterLogEvents allows 5 calls a second per
    /// account and Region; one a second leaves room for other followers).
    const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

    /// `berth logs SERVICE -F -e <aws env>`: new events as CloudWatch gets them, until
    /// Ctrl-C.
    async fn follow(
        cx: &Context,
        engine: &berth_aws::Engine,
        stack: &Stack,
        args: &crate::commands::logs::Args,
        since: Option<i64>,
    ) -> CliResult {
        use futures_util::StreamExt;

        let follower = engine
            .follow_logs(stack, &args.service, since, args.filter.as_deref())
            .map_err(failed)?;
        let mut lines = std::pin::pin!(follower.into_stream(FOLLOW_INTERVAL));
        // One listener for the whole follow: a Ctrl-C while a line prints is not lost.
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        loop {
            let next = tokio::select! {
                next = lines.next() => next,
                _ = &mut ctrl_c => None,
            };
            let Some(line) = next else { return Ok(()) };
            print_line(cx, &line.map_err(failed)?)?;
        }
    }

    /// `berth deployments SERVICE -e <aws env>`: ListServiceDeployments, newest first, in
    /// ECS's words (SUCCESSFUL, ROLLBACK_SUCCESSFUL, ...).
    pub async fn deployments(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: &crate::commands::deployments::Args,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let history = engine
            .deployments(stack, &args.service)
            .await
            .map_err(failed)?;
        if cx.output.is_json() {
            let rows: Vec<serde_json::Value> = history
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "serviceDeploymentArn": d.arn,
                        "status": d.status.as_str(),
                        "taskDefinition": d.task_definition,
                        "createdAt": d.created_at.map(|t| t.to_rfc3339()),
                        "finishedAt": d.finished_at.map(|t| t.to_rfc3339()),
                        "statusReason": d.reason,
                        "lifecycleStage": d.lifecycle_stage,
                    })
                })
                .collect();
            cx.output.json(&rows)?;
            return Ok(());
        }
        let mut table = Table::new([
            "DEPLOYMENT",
            "STATUS",
            "REVISION",
            "STARTED",
            "FINISHED",
            "REASON",
        ]);
        for d in &history {
            table.row([
                d.arn.rsplit('/').next().unwrap_or(&d.arn).to_owned(),
                match &d.lifecycle_stage {
                    Some(stage) => format!("{} ({stage})", d.status.as_str()),
                    None => d.status.as_str().to_owned(),
                },
                berth_aws::status::short_task_definition(&d.task_definition),
                d.created_at
                    .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
                d.finished_at
                    .map_or_else(String::new, |t| t.format("%H:%M:%S").to_string()),
                d.reason.clone(),
            ]);
        }
        cx.output.table(&table);
        Ok(())
    }

    /// `berth rollback SERVICE -e <aws env>`: started, then watched to its end (exit 1 when
    /// it fails or times out).
    pub async fn rollback(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: &crate::commands::rollback::Args,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let progress = crate::commands::aws::progress(&cx.output);
        let started = engine
            .rollback(stack, &args.service, &progress)
            .await
            .map_err(failed)?;
        let (what, json) = match &started {
            RolledBack::Stopped { deployment } => (
                format!("stopping deployment {deployment} with a rollback"),
                serde_json::json!({ "service": args.service, "stopped": deployment }),
            ),
            RolledBack::Redeployed(deployed) => (
                format!("returning to revision {}", deployed.revision),
                serde_json::json!({
                    "service": args.service,
                    "revision": deployed.revision,
                    "task_definition": deployed.task_definition,
                }),
            ),
        };
        if !cx.output.is_json() {
            cx.output.line(format!("{}: {what}", args.service));
        }
        engine
            .watch_rollback(
                stack,
                &args.service,
                &started,
                Options::default(),
                &progress,
            )
            .await
            .map_err(failed)?;
        if cx.output.is_json() {
            cx.output.json(&json)?;
        } else {
            cx.output.line(format!("{}: rolled back", args.service));
        }
        Ok(())
    }

    /// `berth status -e <aws env>`: the engine's describe calls, filled into the local
    /// status report so that the same tables (and the same JSON) show them.
    pub async fn status(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: &crate::commands::status::Args,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let found = engine.status(stack).await.map_err(failed)?;
        let report = report_of(stack, environment, &found);
        if cx.output.is_json() {
            cx.output.json(&report)?;
            return Ok(());
        }
        let style = cx.output.style();
        let mut text = format!(
            "{} {} ({}, account {}, {}) at {}\n",
            style.paint(Paint::Bold, "stack"),
            stack.name,
            environment.name,
            engine.account_id(),
            environment.as_aws().map_or("", |a| a.region.as_str()),
            style.paint(Paint::Bold, &report.url),
        );
        text.push_str(&crate::commands::status::render_tables(
            &report,
            cx.output.width(),
            style,
            args.events,
        ));
        cx.output.text(text);
        for missing in &found.missing {
            cx.output.note(format!(
                "service {missing} does not exist: `berth up -e {}` creates it (once its repository holds an image)",
                environment.name
            ));
        }
        Ok(())
    }

    fn report_of(stack: &Stack, environment: &Environment, found: &StackStatus) -> StatusReport {
        let targets: Vec<(&str, TargetHealthView)> = found
            .target_groups
            .iter()
            .flat_map(|g| {
                g.targets
                    .iter()
                    .filter_map(move |t| Some((g.name.as_str(), target(t)?)))
            })
            .collect();
        StatusReport {
            stack: stack.name.clone(),
            environment: environment.name.clone(),
            url: found
                .url
                .clone()
                .unwrap_or_else(|| "(no load balancer)".to_owned()),
            pid: 0,
            started_at: chrono::DateTime::default(),
            services: found
                .services
                .iter()
                .map(|s| service_status(s, &targets))
                .collect(),
            target_groups: found
                .target_groups
                .iter()
                .map(|g| TargetGroupStatus {
                    target_group_name: g.name.clone(),
                    service: g.service.clone(),
                    weights: Vec::new(),
                    targets: g.targets.iter().filter_map(target).collect(),
                })
                .collect(),
            database: None,
            local_differences: Vec::new(),
        }
    }

    /// `None` for a target that is not `ip:port` (an instance id: not berth's kind).
    fn target(t: &TargetView) -> Option<TargetHealthView> {
        Some(TargetHealthView {
            target: t.target.parse().ok()?,
            state: t.state,
            reason: t.reason.clone(),
            description: t.description.clone(),
        })
    }

    fn service_status(s: &ServiceState, targets: &[(&str, TargetHealthView)]) -> ServiceStatus {
        // Without a rollout state (no circuit breaker; moto) a deployment is done once it
        // is the only one and runs its count, as `deploy` decides.
        let settled = s.deployments.len() == 1
            && s.deployments
                .iter()
                .all(|d| d.running_count == d.desired_count);
        let deployments: Vec<Deployment> = s
            .deployments
            .iter()
            .map(|d| deployment(d, settled))
            .collect();
        ServiceStatus {
            service_name: s.name.clone(),
            desired_count: s.desired_count,
            running_count: s.running_count,
            pending_count: s.pending_count,
            target_group: s.target_group.clone(),
            health_check_grace_period_seconds: u64::from(s.grace_period_secs),
            deployment_configuration: Default::default(),
            steady_state: settled && s.running_count == s.desired_count,
            deployments,
            tasks: s
                .tasks
                .iter()
                .map(|t| ServiceTaskStatus {
                    task: snapshot(t),
                    deployment_id: t.deployment_id.clone(),
                    task_definition: t.task_definition.clone(),
                    target_health: t.target.as_ref().and_then(|addr| {
                        targets
                            .iter()
                            .find(|(group, h)| {
                                Some(*group) == s.target_group.as_deref()
                                    && h.target.to_string() == *addr
                            })
                            .map(|(_, h)| h.clone())
                    }),
                })
                .collect(),
            events: s
                .events
                .iter()
                .map(|(at, message)| ServiceEvent {
                    created_at: *at,
                    message: message.clone(),
                })
                .collect(),
            autoscaling: None,
        }
    }

    pub(super) fn deployment(d: &DeploymentState, settled: bool) -> Deployment {
        let rollout_state = d.rollout_state.unwrap_or(if settled {
            RolloutState::Completed
        } else {
            RolloutState::InProgress
        });
        Deployment {
            id: d.id.clone(),
            status: d.status,
            task_definition: d.task_definition.clone(),
            image: String::new(),
            strategy: d.strategy,
            desired_count: d.desired_count,
            pending_count: d.pending_count,
            running_count: d.running_count,
            failed_tasks: d.failed_tasks,
            rollout_state,
            rollout_state_reason: d.rollout_state_reason.clone(),
            rollback: false,
            created_at: d.created_at.unwrap_or_default(),
            updated_at: d.updated_at.unwrap_or_default(),
            finished_at: None,
            lifecycle_stage: None,
        }
    }

    /// ECS's words parsed into the local ones (they are the same words).
    fn word<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    fn snapshot(t: &TaskState) -> TaskSnapshot {
        let port = t
            .target
            .as_deref()
            .and_then(|a| a.rsplit(':').next()?.parse().ok())
            .unwrap_or(0);
        let mut snapshot = TaskSnapshot::provisioning(TaskId::from(t.id.as_str()), port);
        snapshot.last_status = word(&t.last_status).unwrap_or(TaskStatus::Provisioning);
        snapshot.desired_status = word(&t.desired_status).unwrap_or(DesiredStatus::Running);
        snapshot.health_status = word(&t.health_status).unwrap_or_default();
        snapshot.created_at = t.created_at.unwrap_or_default();
        snapshot.started_at = t.started_at;
        snapshot.stopped_at = t.stopped_at;
        snapshot.stop_code = t.stop_code.as_deref().and_then(word::<StopCode>);
        snapshot.stopped_reason = t.stopped_reason.clone();
        snapshot.exit_code = t.exit_code;
        snapshot
    }

    /// `berth param … -e <aws env>`: SSM Parameter Store, shown as the local store is.
    pub async fn param(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: local::Args,
    ) -> CliResult {
        // What SSM would refuse is refused here, as the local store does (exit 2).
        match &args.command {
            ParamCommand::Put(put) => check_name(&put.name)?,
            ParamCommand::Get(get) | ParamCommand::History(get) => check_selector(&get.name)?,
            ParamCommand::List(list) => {
                local::check_list(list)?;
                if let Some(path) = &list.path {
                    berth_spec::rules::parameter_path(path)
                        .map_err(|e| CliError::Usage(e.into()))?;
                }
            }
            ParamCommand::Rm(rm) => check_name(&rm.name)?,
        }
        let engine = connect(environment).await?;
        match args.command {
            ParamCommand::Put(put) => {
                let kind = local::put_kind(stack, &put).map(Into::into);
                let value = local::read_value(put.value)?;
                let options = PutParam {
                    kind,
                    overwrite: put.overwrite,
                    description: put.description,
                };
                let version = engine
                    .param_put(&put.name, &value, &options)
                    .await
                    .map_err(failed)?;
                local::show_put(cx, &put.name, version)
            }
            ParamCommand::Get(get) => {
                let found = engine
                    .param_get(&get.name, get.with_decryption)
                    .await
                    .map_err(failed)?;
                local::show_parameter(cx, &parameter(found))
            }
            ParamCommand::History(get) => {
                let versions = engine
                    .param_history(&get.name, get.with_decryption)
                    .await
                    .map_err(failed)?;
                let versions: Vec<Parameter> = versions.into_iter().map(parameter).collect();
                local::show_history(cx, &versions)
            }
            ParamCommand::List(list) => {
                let found = engine
                    .param_list(list.path.as_deref(), list.recursive)
                    .await
                    .map_err(failed)?;
                let found: Vec<ParameterSummary> = found.into_iter().map(summary).collect();
                local::list_parameters(cx, stack, &found, list.path.is_none())
            }
            ParamCommand::Rm(rm) => {
                engine.param_delete(&rm.name).await.map_err(failed)?;
                local::show_deleted(cx, &rm.name)
            }
        }
    }

    fn check_name(name: &str) -> CliResult {
        berth_spec::rules::parameter_name(name)
            .map(drop)
            .map_err(|e| CliError::Usage(e.into()))
    }

    /// `NAME` or `NAME:VERSION`.
    fn check_selector(selector: &str) -> CliResult {
        match selector.rsplit_once(':') {
            Some((name, version)) => {
                if version.parse::<u64>().map_or(true, |v| v == 0) {
                    return Err(CliError::Usage(anyhow!(
                        "invalid selector {selector:?}: use NAME or NAME:VERSION"
                    )));
                }
                check_name(name)
            }
            None => check_name(selector),
        }
    }

    /// SSM's answer as the local store's, so that one renderer shows both.
    fn parameter(p: Param) -> Parameter {
        let value = match (p.value, p.kind) {
            (Some(v), berth_spec::ParameterType::String) => ParameterValue::Plain(v),
            (Some(v), berth_spec::ParameterType::SecureString) => {
                ParameterValue::Secret(SecretString::new(v))
            }
            (None, _) => ParameterValue::Redacted,
        };
        Parameter {
            name: p.name,
            kind: p.kind.into(),
            value,
            version: p.version,
            last_modified: p.last_modified.unwrap_or_default(),
            description: p.description,
        }
    }

    fn summary(p: ParamSummary) -> ParameterSummary {
        ParameterSummary {
            name: p.name,
            kind: p.kind.into(),
            version: p.version,
            last_modified: p.last_modified.unwrap_or_default(),
            description: p.description,
        }
    }

    /// `berth scale SERVICE N -e <aws env>`: the desired count through UpdateService.
    pub async fn scale(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: &crate::commands::scale::Args,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let scaled = engine
            .scale(stack, &args.service, args.count)
            .await
            .map_err(failed)?;
        if cx.output.is_json() {
            cx.output.json(&serde_json::json!({
                "service": scaled.service,
                "desiredCount": scaled.desired_count,
            }))?;
            return Ok(());
        }
        cx.output.line(format!(
            "{}: desired count {}",
            scaled.service, scaled.desired_count
        ));
        match (scaled.autoscaling, scaled.stack_count) {
            (Some((min, max)), _) if !(min..=max).contains(&scaled.desired_count) => {
                cx.output.note(format!(
                    "autoscaling keeps {} between {min} and {max}: it will move the count back",
                    scaled.service
                ));
            }
            (None, Some(count)) if count != scaled.desired_count => {
                cx.output.note(format!(
                    "the stack file says {count}: the next `berth up -e {env}` or `berth deploy -e {env}` sets it back (change desired_count in the stack file to keep it)",
                    env = environment.name
                ));
            }
            _ => {}
        }
        Ok(())
    }
}
