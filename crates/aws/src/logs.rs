//! `berth logs SERVICE -e <aws env>`: the service's CloudWatch log group through
//! FilterLogEvents, every task's stream merged in time order.

use berth_spec::Service;

use crate::clients::Clients;
use crate::error::{self, Error, Result};

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub stream: String,
    pub message: String,
}

/// The events of the service's log group since `since` (milliseconds since the epoch),
/// matching `filter` (CloudWatch's own filter pattern syntax), oldest first. Events of the
/// same millisecond keep the order CloudWatch ingested them in.
pub(crate) async fn events(
    c: &Clients,
    service: &Service,
    since: Option<i64>,
    filter: Option<&str>,
) -> Result<Vec<LogLine>> {
    let group = &service.logs.group;
    let mut pages = c
        .logs
        .filter_log_events()
        .log_group_name(group)
        .set_start_time(since)
        .set_filter_pattern(filter.map(str::to_owned))
        .into_paginator()
        .send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) if error::code(&e) == Some("ResourceNotFoundException") => {
                return Err(Error::Other(format!(
                    "log group {group} does not exist: `berth up` creates it"
                )));
            }
            Err(e) => return Err(error::call("logs:FilterLogEvents")(e)),
        };
        found.extend(page.events().iter().map(|e| {
            (
                e.ingestion_time().unwrap_or(0),
                LogLine {
                    timestamp: e.timestamp().unwrap_or(0),
                    stream: e.log_stream_name().unwrap_or("").to_owned(),
                    message: e.message().unwrap_or("").to_owned(),
                },
            )
        }));
    }
    // FilterLogEvents pages are not one time-ordered sequence across streams.
    found.sort_by_key(|(ingested, line)| (line.timestamp, *ingested));
    Ok(found.into_iter().map(|(_, line)| line).collect())
}
