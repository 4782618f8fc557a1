//! Reading a log group: events of all its streams merged in time order, optionally followed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

use super::{
    FilterPattern, LogError, LogEvent, LogStore, STREAMS_DIR, StoredEvent, read_events_from,
    stream_files,
};

/// What to read from a log group.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub group: String,
    /// Only events at or after this time (ms since the epoch).
    pub since: Option<i64>,
    pub filter: FilterPattern,
    /// Keep going: new events as they are written, found by polling the files.
    pub follow: bool,
    /// How often `follow` looks for new events.
    pub poll_interval: Duration,
}

impl LogQuery {
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            since: None,
            filter: FilterPattern::default(),
            follow: false,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// How far one stream file has been read.
#[derive(Debug, Default)]
struct Cursor {
    inode: u64,
    offset: u64,
    /// The last timestamp delivered, and how many events of that millisecond were: after
    /// retention rewrote the file, reading restarts from the top and skips up to there.
    last_timestamp: i64,
    seen_at_last: u64,
}

impl LogStore {
    /// The events of `query.group`, merged across streams in time order (ties by stream
    /// name). Without `follow` the stream ends after the events that exist now; with it, it
    /// goes on until dropped. Needs a tokio runtime.
    pub fn query(&self, query: LogQuery) -> Result<LogEvents, LogError> {
        let streams_dir = self.existing_group_dir(&query.group)?.join(STREAMS_DIR);
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run_query(streams_dir, query, tx));
        Ok(LogEvents { rx })
    }
}

/// The events a [`LogQuery`] finds, as a [`Stream`]. Dropping it stops the reading.
#[derive(Debug)]
pub struct LogEvents {
    rx: mpsc::Receiver<Result<LogEvent, LogError>>,
}

impl Stream for LogEvents {
    type Item = Result<LogEvent, LogError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

async fn run_query(
    streams_dir: PathBuf,
    query: LogQuery,
    tx: mpsc::Sender<Result<LogEvent, LogError>>,
) {
    let mut cursors: HashMap<PathBuf, Cursor> = HashMap::new();
    loop {
        let dir = streams_dir.clone();
        let mut taken = std::mem::take(&mut cursors);
        let scanned = tokio::task::spawn_blocking(move || {
            let events = scan(&dir, &mut taken);
            (events, taken)
        })
        .await;
        let events = match scanned {
            Ok((events, back)) => {
                cursors = back;
                events
            }
            Err(_) => return,
        };
        let events = match events {
            Ok(events) => events,
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        for event in events {
            let wanted = query.since.is_none_or(|since| event.timestamp >= since)
                && query.filter.matches(&event.message);
            if wanted && tx.send(Ok(event)).await.is_err() {
                // The reader went away.
                return;
            }
        }
        if !query.follow {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(query.poll_interval) => {}
            () = tx.closed() => return,
        }
    }
}

/// New events of every stream since the cursors, merged in time order.
fn scan(
    streams_dir: &std::path::Path,
    cursors: &mut HashMap<PathBuf, Cursor>,
) -> Result<Vec<LogEvent>, LogError> {
    let mut events = Vec::new();
    for (stream, path) in stream_files(streams_dir)? {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // expired between listing and reading
        };
        let cursor = cursors.entry(path.clone()).or_default();
        let replaced =
            cursor.inode != 0 && (cursor.inode != meta.ino() || meta.len() < cursor.offset);
        if replaced {
            cursor.offset = 0;
        }
        cursor.inode = meta.ino();
        let Ok((stored, offset)) = read_events_from(&path, cursor.offset) else {
            continue;
        };
        cursor.offset = offset;
        let mut skip_at_last = if replaced { cursor.seen_at_last } else { 0 };
        for StoredEvent { timestamp, message } in stored {
            if replaced && timestamp < cursor.last_timestamp {
                continue;
            }
            if replaced && timestamp == cursor.last_timestamp && skip_at_last > 0 {
                skip_at_last -= 1;
                continue;
            }
            if timestamp == cursor.last_timestamp {
                cursor.seen_at_last += 1;
            } else {
                cursor.last_timestamp = timestamp;
                cursor.seen_at_last = 1;
            }
            events.push(LogEvent {
                timestamp,
                stream: stream.clone(),
                message,
            });
        }
    }
    // Each stream is already in order; a stable sort keeps each stream's order on ties.
    events.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.stream.cmp(&b.stream))
    });
    Ok(events)
}
