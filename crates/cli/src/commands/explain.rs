//! `berth explain`: the resolved stack, every default filled in.

use berth_local::engine::Engine;
use berth_spec::{Environment, EnvironmentKind, Stack, duration};

use crate::context::Context;
use crate::error::CliResult;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(cx: &Context, _args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    if cx.output.is_json() {
        cx.output.json(&stack)?;
        return Ok(());
    }
    let environment = cx.environment(&stack)?;
    let engine = if stack.services.iter().any(|s| s.image.is_some()) {
        Some(engine_here().await)
    } else {
        None
    };
    let body = toml::to_string_pretty(&stack).map_err(anyhow::Error::from)?;
    cx.output.text(format!(
        "{}\n{body}",
        header(
            &stack,
            environment,
            &cx.file.display().to_string(),
            engine.as_deref()
        )
    ));
    Ok(())
}

/// What runs image services on this machine, in words.
async fn engine_here() -> String {
    match Engine::available().await {
        Ok(Some(engine)) => format!(
            "{} is here, so they run as containers",
            engine.program.display()
        ),
        Ok(None) => "no engine is here, so they run as processes from their builds".to_owned(),
        Err(error) => format!("the engine here cannot be used ({error})"),
    }
}

/// Comment lines that say what differs between the local runtime and AWS.
fn header(stack: &Stack, env: &Environment, file: &str, engine: Option<&str>) -> String {
    let mut out = format!("# {file}, resolved: every default filled in.\n");
    match &env.kind {
        EnvironmentKind::Aws(aws) => {
            out.push_str(&format!(
                "#\n# Environment `{}` runs on AWS in {}: the values below apply as written.\n",
                env.name, aws.region
            ));
        }
        EnvironmentKind::Local(local) => {
            out.push_str(&format!(
            "#\n# On environment `{}` (the embedded runtime) these replace the services' AWS values:\n",
            env.name
        ));
            for service in &stack.services {
                let hc = &service.health_check;
                out.push_str(&format!(
                "#   {}: health check every {} (AWS {}), timeout {} (AWS {}), healthy after {} (AWS {}), unhealthy after {} (AWS {}); draining {} (AWS {})\n",
                service.name,
                duration::format(local.health_check_interval),
                duration::format(hc.interval),
                duration::format(local.health_check_timeout),
                duration::format(hc.timeout),
                local.healthy_threshold,
                hc.healthy_threshold,
                local.unhealthy_threshold,
                hc.unhealthy_threshold,
                duration::format(local.deregistration_delay),
                duration::format(service.deregistration_delay),
            ));
            }
            out.push_str(&format!(
                "#   log groups: at most {} MiB each on disk, oldest events dropped first (CloudWatch: no cap)\n",
                local.log_group_max_mb
            ));
            if stack.services.iter().any(|s| s.autoscaling.is_some()) {
                out.push_str(&format!(
                    "#   autoscaling: a metric datapoint every {} (CloudWatch: 1m); 3 above target scale out, 15 below scale in\n",
                    duration::format(local.metric_period)
                ));
            }
            if let Some(engine) = engine {
                let names: Vec<&str> = stack
                    .services
                    .iter()
                    .filter(|s| s.image.is_some())
                    .map(|s| s.name.as_str())
                    .collect();
                out.push_str(&format!(
                    "#   {}: containers from their images when podman or docker runs here (BERTH_CONTAINER_ENGINE chooses; `none`: processes), else processes from their builds; {engine}\n",
                    names.join(", ")
                ));
            }
        }
    }
    out
}
