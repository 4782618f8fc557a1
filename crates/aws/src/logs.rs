//! `berth logs SERVICE -e <aws env>`: the service's CloudWatch log group through
//! FilterLogEvents, every task's stream merged in time order; `-F` polls it ([`LogFollower`]).

use std::collections::HashMap;
use std::time::Duration;

use berth_spec::Service;
use futures_util::Stream;

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
    let found = fetch(&c.logs, &service.logs.group, since, filter).await?;
    Ok(found.into_iter().map(|e| e.line).collect())
}

/// One event as FilterLogEvents returns it.
struct Fetched {
    id: String,
    ingested: i64,
    line: LogLine,
}

/// Every event of `group` from `since` on (inclusive), sorted by (timestamp, ingestion).
async fn fetch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    since: Option<i64>,
    filter: Option<&str>,
) -> Result<Vec<Fetched>> {
    let mut pages = logs
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
            let line = LogLine {
                timestamp: e.timestamp().unwrap_or(0),
                stream: e.log_stream_name().unwrap_or("").to_owned(),
                message: e.message().unwrap_or("").to_owned(),
            };
            Fetched {
                // Without an id (CloudWatch always gives one), the event's content is its key.
                id: e.event_id().map_or_else(
                    || format!("{}\0{}\0{}", line.stream, line.timestamp, line.message),
                    str::to_owned,
                ),
                ingested: e.ingestion_time().unwrap_or(0),
                line,
            }
        }));
    }
    // FilterLogEvents pages are not one time-ordered sequence across streams.
    found.sort_by_key(|e| (e.line.timestamp, e.ingested));
    Ok(found)
}

/// How far back each poll of a follow looks again behind the newest event seen: the awslogs
/// driver sends each task's events in batches (every 5 s by default), so a stream's event can
/// be ingested after a later one of another stream was already shown.
pub const FOLLOW_LOOKBACK: Duration = Duration::from_secs(30);

/// `berth logs -F` on CloudWatch: polls FilterLogEvents and yields each event once.
///
/// Each poll starts [`FOLLOW_LOOKBACK`] before the newest timestamp seen (never before
/// `since`) and drops the events already yielded, by eventId. So an event is yielded
/// exactly once, each poll's new events in time order; one ingested late (older than an
/// event already shown, within the lookback) comes out when it arrives, not in its place.
#[derive(Debug)]
pub struct LogFollower {
    logs: aws_sdk_cloudwatchlogs::Client,
    group: String,
    filter: Option<String>,
    since: Option<i64>,
    newest: Option<i64>,
    lookback_ms: i64,
    /// eventId → timestamp of what was yielded and may come back in a later poll.
    seen: HashMap<String, i64>,
}

impl LogFollower {
    pub(crate) fn new(
        c: &Clients,
        service: &Service,
        since: Option<i64>,
        filter: Option<&str>,
    ) -> Self {
        LogFollower {
            logs: c.logs.clone(),
            group: service.logs.group.clone(),
            filter: filter.map(str::to_owned),
            since,
            newest: None,
            lookback_ms: i64::try_from(FOLLOW_LOOKBACK.as_millis()).unwrap_or(i64::MAX),
            seen: HashMap::new(),
        }
    }

    /// The events no earlier poll returned, oldest first (the first poll: every event since
    /// `since`).
    pub async fn poll(&mut self) -> Result<Vec<LogLine>> {
        let start = match (self.newest, self.since) {
            (Some(newest), since) => Some(since.map_or(newest - self.lookback_ms, |s| {
                s.max(newest - self.lookback_ms)
            })),
            (None, since) => since,
        };
        let found = fetch(&self.logs, &self.group, start, self.filter.as_deref()).await?;
        // What the next poll cannot return again need not be remembered.
        if let Some(start) = start {
            self.seen.retain(|_, at| *at >= start);
        }
        let mut fresh = Vec::new();
        for e in found {
            if self.seen.insert(e.id, e.line.timestamp).is_none() {
                self.newest = Some(
                    self.newest
                        .map_or(e.line.timestamp, |n| n.max(e.line.timestamp)),
                );
                fresh.push(e.line);
            }
        }
        Ok(fresh)
    }

    /// Polls every `interval` for ever: each new event, in order; an error ends the stream.
    pub fn into_stream(self, interval: Duration) -> impl Stream<Item = Result<LogLine>> + Send {
        let state = (self, std::collections::VecDeque::new(), true, false);
        futures_util::stream::unfold(
            state,
            move |(mut follower, mut queue, first, failed)| async move {
                if failed {
                    return None;
                }
                let mut first = first;
                loop {
                    if let Some(line) = queue.pop_front() {
                        return Some((Ok(line), (follower, queue, first, false)));
                    }
                    if !first {
                        tokio::time::sleep(interval).await;
                    }
                    first = false;
                    match follower.poll().await {
                        Ok(lines) => queue.extend(lines),
                        Err(e) => return Some((Err(e), (follower, queue, false, true))),
                    }
                }
            },
        )
    }
}
