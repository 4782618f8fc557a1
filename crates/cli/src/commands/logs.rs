//! `berth logs SERVICE`: a service's log group, every task's stream merged in time order; on
//! an AWS environment, CloudWatch Logs' FilterLogEvents (`commands::aws_ops::logs`, which
//! polls it for -F).

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use berth_local::logs::{FilterPattern, LogError, LogEvent, LogQuery, LogStore, parse_since};
use chrono::{TimeZone, Utc};
use futures_util::StreamExt;

use super::build::find_service;
use super::local_state;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::Paint;

/// Show a service's logs: every task's stdout and stderr, merged in time order.
///
/// Events older than the group's retention are deleted first, as CloudWatch would have.
/// With `-e <aws env>`: CloudWatch Logs itself, where --filter takes CloudWatch's whole
/// filter pattern syntax, and -F polls FilterLogEvents every second (each event once; one
/// that CloudWatch ingests late comes out when it arrives).
///
/// --filter takes the unstructured subset of CloudWatch filter patterns: space-separated
/// terms that must all occur (case-sensitive), "quoted phrases", -term to exclude a term,
/// ?term for alternatives (at least one must occur). JSON ({ $.x = ... }) and
/// space-delimited ([a, b]) patterns are not supported.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service whose log group to show.
    pub(crate) service: String,
    /// Keep printing new events as tasks write them (Ctrl-C to stop). The short flag is -F
    /// because -f is the stack file.
    #[arg(short = 'F', long)]
    pub(crate) follow: bool,
    /// Only events since this long ago (30s, 10m, 2h, 1d) or since an RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Only events matching this filter pattern. Supported (CloudWatch's unstructured
    /// subset): space-separated terms that must all occur (case-sensitive), "quoted phrases",
    /// -term to exclude, ?term for alternatives (one must occur). JSON and space-delimited
    /// patterns are not supported.
    #[arg(long)]
    pub(crate) filter: Option<String>,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let service = find_service(&stack, &args.service)?;
    let since = args
        .since
        .as_deref()
        .map(|text| parse_since(text, Utc::now()))
        .transpose()
        .map_err(|e| CliError::Usage(anyhow::Error::new(e)))?;
    let environment = cx.environment(&stack)?;
    if environment.as_local().is_none() {
        return crate::commands::aws_ops::logs(cx, &stack, environment, &args, since).await;
    }
    let state = local_state::open(cx, &stack, "logs")?;
    let filter = args
        .filter
        .as_deref()
        .map(FilterPattern::parse)
        .transpose()
        .map_err(|e| CliError::Usage(anyhow::Error::new(e)))?
        .unwrap_or_default();

    let store = LogStore::open(&state).context("cannot open the log store")?;
    let group = &service.logs.group;
    // The group exists from now on with the stack's retention, which applies at once.
    store
        .create_group(group, service.logs.retention_days)
        .with_context(|| format!("cannot prepare log group {group}"))?;
    store
        .apply_retention(group, Utc::now().timestamp_millis())
        .with_context(|| format!("cannot apply the retention of {group}"))?;

    let query = LogQuery {
        since,
        filter,
        follow: args.follow,
        poll_interval: Duration::from_millis(500),
        ..LogQuery::new(group.clone())
    };
    let mut events = store
        .query(query)
        .with_context(|| format!("cannot read log group {group}"))?;
    let mut count = 0usize;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            _ = tokio::signal::ctrl_c(), if args.follow => None,
        };
        let Some(event) = next else { break };
        let event = event.map_err(|e: LogError| {
            CliError::Failed(anyhow!(e).context(format!("cannot read log group {group}")))
        })?;
        print_event(cx, &event)?;
        count += 1;
    }
    if count == 0 && !args.follow && !cx.output.is_json() {
        cx.output
            .note(format!("no log events in {group} (with these options)"));
    }
    Ok(())
}

pub(crate) fn print_event(cx: &Context, event: &LogEvent) -> CliResult {
    if cx.output.is_json() {
        // One JSON object per line: a followed stream has no end to close an array at.
        let line = serde_json::to_string(event).map_err(anyhow::Error::from)?;
        cx.output.line(line);
        return Ok(());
    }
    let style = cx.output.style();
    let time = Utc
        .timestamp_millis_opt(event.timestamp)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| event.timestamp.to_string());
    cx.output.line(format!(
        "{} {} {}",
        style.paint(Paint::Dim, time),
        style.paint(Paint::Bold, short_stream(&event.stream)),
        event.message
    ));
    Ok(())
}

/// `ecs/backend-app/0123456789abcdef...` → `backend-app/01234567`: the container and the
/// start of the task id are enough to tell tasks apart.
fn short_stream(stream: &str) -> String {
    let mut parts = stream.rsplitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(task), Some(container)) => {
            let task: String = task.chars().take(8).collect();
            format!("{container}/{task}")
        }
        _ => stream.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_shortened() {
        assert_eq!(
            short_stream("ecs/backend-app/0123456789abcdef0123456789abcdef"),
            "backend-app/01234567"
        );
        assert_eq!(short_stream("plain"), "plain");
    }
}
