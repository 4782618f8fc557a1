//! The local log store's size cap per group (issue: a chatty task filled the disk at
//! 132 MB a minute while the group's 30-day retention kept all of it).
//!
//! CloudWatch has no size cap; it bills per GB ingested. On one machine the disk is the
//! limit, so a group over its cap loses its oldest events first, across all its streams: the
//! cut is a timestamp, found from every event's time and size, and each stream is then
//! trimmed by the same rewrite retention uses ([`super::expire_stream`]), under the lock the
//! writers take. A group is trimmed to three quarters of its cap, so a trim (which reads the
//! whole group) happens at most once per quarter of the cap written.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;

use super::{LogError, RetentionReport, expire_stream, stream_files};
use crate::state_dir::FsError;

/// Only the timestamp of a stored event; the message is skipped, not copied.
#[derive(Deserialize)]
struct Stamp {
    timestamp: i64,
}

/// Drops the oldest events of the group whose streams are in `streams_dir` until it holds at
/// most `cap` bytes (to three quarters of it, once it is over).
pub(super) fn enforce(streams_dir: &Path, cap: u64) -> Result<RetentionReport, LogError> {
    let streams = stream_files(streams_dir)?;
    // (timestamp, bytes) of every event in the group.
    let mut events: Vec<(i64, u64)> = Vec::new();
    let mut total = 0u64;
    for (_, path) in &streams {
        let file = match File::open(path) {
            Ok(file) => file,
            // Removed by retention meanwhile: nothing of it to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FsError::new("open", path, e).into()),
        };
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| FsError::new("read", path, e))?;
            let bytes = line.len() as u64 + 1;
            total += bytes;
            // A torn line counts for its bytes and goes with the first trim of its stream.
            let timestamp =
                serde_json::from_slice::<Stamp>(&line).map_or(i64::MIN, |s| s.timestamp);
            events.push((timestamp, bytes));
        }
    }
    let mut report = RetentionReport::default();
    if total <= cap {
        return Ok(report);
    }
    let Some(cutoff) = cutoff(events, total - cap / 4 * 3) else {
        return Ok(report);
    };
    for (stream, path) in &streams {
        let (deleted, removed) = expire_stream(path, cutoff)?;
        report.events_deleted += deleted;
        if removed {
            report.streams_deleted += 1;
            tracing::debug!(stream, "log stream emptied by the group's size cap");
        }
    }
    Ok(report)
}

/// The first timestamp to keep so that the events before it hold at least `to_free` bytes:
/// every event older than it goes, in every stream, but never the newest millisecond's.
/// `None` when nothing needs to go.
fn cutoff(mut events: Vec<(i64, u64)>, to_free: u64) -> Option<i64> {
    if to_free == 0 {
        return None;
    }
    events.sort_unstable_by_key(|&(timestamp, _)| timestamp);
    // The newest millisecond is never dropped, so a group always keeps its latest events.
    let newest = events.last()?.0;
    let mut freed = 0u64;
    for (timestamp, bytes) in events {
        freed += bytes;
        if freed >= to_free || timestamp == newest {
            // Events sharing this millisecond go together: the cut is the next one.
            return Some(timestamp.saturating_add(1).min(newest));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::cutoff;

    #[test]
    fn the_cut_frees_at_least_what_is_asked_oldest_first() {
        let events = vec![(30, 10), (10, 10), (20, 10), (40, 10)];
        assert_eq!(cutoff(events.clone(), 0), None);
        assert_eq!(cutoff(events.clone(), 5), Some(11));
        assert_eq!(cutoff(events.clone(), 10), Some(11));
        assert_eq!(cutoff(events.clone(), 11), Some(21));
        assert_eq!(
            cutoff(events, 100),
            Some(40),
            "the newest millisecond stays"
        );
    }
}
