//! Log groups and streams, as the `awslogs` driver and CloudWatch Logs keep them (§8).
//!
//! ```text
//! .berth/logs/<group>/group.json              retention
//! .berth/logs/<group>/streams/<stream>.jsonl  one {"timestamp":ms,"message":...} per line
//! ```
//! Group and stream names are percent-encoded into file names (`/ecs/backend` →
//! `%2Fecs%2Fbackend`), so any valid name maps to exactly one file and back.

mod cap;
mod filter;
mod query;
mod since;
mod sink;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use filter::{FilterError, FilterPattern};
pub use query::{LogEvents, LogQuery};
pub use since::{SinceError, parse_since};
pub use sink::{LogSink, MAX_EVENT_BYTES, pipe_lines};

use crate::state_dir::{self, FsError, StateDir};

/// CloudWatch's allowed `retentionInDays` values (S8.4).
pub const RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

const GROUP_FILE: &str = "group.json";
const STREAMS_DIR: &str = "streams";
const STREAM_EXT: &str = "jsonl";
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log group name {name:?}: {problem}")]
    InvalidGroup { name: String, problem: String },
    #[error("invalid log stream name {name:?}: 1 to 512 characters, without : or *")]
    InvalidStream { name: String },
    #[error("log group {name} does not exist")]
    GroupNotFound { name: String },
    #[error(
        "invalid log retention of {days} days: CloudWatch allows 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653"
    )]
    InvalidRetention { days: u32 },
    #[error("corrupt log group settings {}", path.display())]
    CorruptGroup {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub stream: String,
    pub message: String,
}

/// What a stream file holds per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEvent {
    timestamp: i64,
    message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupSettings {
    retention_days: Option<u32>,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub events_deleted: u64,
    pub streams_deleted: u64,
}

/// `<prefix>/<container>/<task-id>` (S8.2).
pub fn stream_name(prefix: &str, container: &str, task_id: &str) -> String {
    format!("{prefix}/{container}/{task_id}")
}

/// The log groups of one stack, under `.berth/logs`.
#[derive(Debug, Clone)]
pub struct LogStore {
    root: PathBuf,
    /// The most bytes a group keeps (see [`LogStore::with_group_cap`]).
    group_cap: Option<u64>,
}

impl LogStore {
    pub fn open(state: &StateDir) -> Result<Self, LogError> {
        let root = state.logs();
        state_dir::create_private_dir(&root)?;
        Ok(Self {
            root,
            group_cap: None,
        })
    }

    /// Caps every group at `bytes` on disk: the sinks of this store drop the group's oldest
    /// events once it is over (see [`cap::enforce`] for how far over it can get).
    pub fn with_group_cap(mut self, bytes: u64) -> Self {
        self.group_cap = Some(bytes);
        self
    }

    /// Drops `group`'s oldest events until it holds at most `bytes`; what was dropped.
    pub fn apply_size_cap(&self, group: &str, bytes: u64) -> Result<RetentionReport, LogError> {
        let dir = self.existing_group_dir(group)?;
        cap::enforce(&dir.join(STREAMS_DIR), bytes)
    }

    /// Creates the group if needed and sets its retention (`None`: never expire).
    pub fn create_group(&self, group: &str, retention_days: Option<u32>) -> Result<(), LogError> {
        validate_group(group)?;
        if let Some(days) = retention_days
            && !RETENTION_DAYS.contains(&days)
        {
            return Err(LogError::InvalidRetention { days });
        }
        let dir = self.group_dir(group);
        state_dir::create_private_dir(&dir.join(STREAMS_DIR))?;
        let settings = GroupSettings { retention_days };
        let bytes = serde_json::to_vec(&settings).map_err(|source| LogError::CorruptGroup {
            path: dir.join(GROUP_FILE),
            source,
        })?;
        state_dir::write_file_atomic(&dir.join(GROUP_FILE), &bytes, 0o600)?;
        Ok(())
    }

    /// The groups that exist, sorted.
    pub fn groups(&self) -> Result<Vec<String>, LogError> {
        let mut groups: Vec<String> = list_dir(&self.root)?
            .into_iter()
            .filter(|path| path.join(GROUP_FILE).is_file())
            .filter_map(|path| decode_name(path.file_name()?.to_str()?))
            .collect();
        groups.sort();
        Ok(groups)
    }

    /// The streams of a group, sorted.
    pub fn streams(&self, group: &str) -> Result<Vec<String>, LogError> {
        let dir = self.existing_group_dir(group)?.join(STREAMS_DIR);
        let mut streams: Vec<String> = stream_files(&dir)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        streams.sort();
        Ok(streams)
    }

    /// A sink that appends a task's output lines to `stream` of `group` (created with no
    /// retention if it does not exist yet). Needs a tokio runtime: the writes happen on a task
    /// of their own, so a chatty task never waits for the disk.
    pub fn sink(&self, group: &str, stream: &str) -> Result<LogSink, LogError> {
        let path = self.stream_path(group, stream)?;
        let cap = self.group_cap.map(|bytes| sink::GroupCap {
            streams: self.group_dir(group).join(STREAMS_DIR),
            bytes,
        });
        Ok(LogSink::spawn(path, cap))
    }

    /// Appends events to a stream directly (synchronously), in order.
    pub fn append(
        &self,
        group: &str,
        stream: &str,
        events: &[(i64, &str)],
    ) -> Result<(), LogError> {
        let path = self.stream_path(group, stream)?;
        let mut buf = Vec::new();
        for (timestamp, message) in events {
            sink::encode_event(&mut buf, *timestamp, message);
        }
        sink::append_locked(&path, &buf)?;
        Ok(())
    }

    /// Deletes the events older than the group's retention, and the streams left empty.
    pub fn apply_retention(&self, group: &str, now_ms: i64) -> Result<RetentionReport, LogError> {
        let dir = self.existing_group_dir(group)?;
        let settings = read_settings(&dir)?;
        let mut report = RetentionReport::default();
        let Some(days) = settings.retention_days else {
            return Ok(report);
        };
        let cutoff = now_ms - i64::from(days) * DAY_MS;
        for (stream, path) in stream_files(&dir.join(STREAMS_DIR))? {
            let (deleted, now_empty) = expire_stream(&path, cutoff)?;
            report.events_deleted += deleted;
            if now_empty {
                report.streams_deleted += 1;
                tracing::debug!(group, stream, "log stream expired");
            }
        }
        Ok(report)
    }

    fn group_dir(&self, group: &str) -> PathBuf {
        self.root.join(encode_name(group))
    }

    fn existing_group_dir(&self, group: &str) -> Result<PathBuf, LogError> {
        validate_group(group)?;
        let dir = self.group_dir(group);
        if dir.join(GROUP_FILE).is_file() {
            Ok(dir)
        } else {
            Err(LogError::GroupNotFound {
                name: group.to_owned(),
            })
        }
    }

    /// The file of a stream, its group created when missing.
    fn stream_path(&self, group: &str, stream: &str) -> Result<PathBuf, LogError> {
        validate_group(group)?;
        validate_stream(stream)?;
        let dir = self.group_dir(group);
        if !dir.join(GROUP_FILE).is_file() {
            self.create_group(group, None)?;
        }
        Ok(dir
            .join(STREAMS_DIR)
            .join(format!("{}.{STREAM_EXT}", encode_name(stream))))
    }
}

/// Rewrites a stream without its events older than `cutoff`; removes it when none is left.
/// Returns (events deleted, stream removed).
fn expire_stream(path: &Path, cutoff: i64) -> Result<(u64, bool), LogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| FsError::new("open", path, e))?;
    // Writers append under the same lock and reopen when the file was replaced.
    file.lock().map_err(|e| FsError::new("lock", path, e))?;
    let mut kept = Vec::new();
    let mut deleted = 0u64;
    for line in BufReader::new(&file).split(b'\n') {
        let line = line.map_err(|e| FsError::new("read", path, e))?;
        match serde_json::from_slice::<StoredEvent>(&line) {
            Ok(event) if event.timestamp < cutoff => deleted += 1,
            Ok(_) => {
                kept.extend_from_slice(&line);
                kept.push(b'\n');
            }
            // A torn line (a crash mid-write) is dropped with the expired events.
            Err(_) => {}
        }
    }
    if deleted == 0 {
        return Ok((0, false));
    }
    if kept.is_empty() {
        fs::remove_file(path).map_err(|e| FsError::new("remove", path, e))?;
        return Ok((deleted, true));
    }
    state_dir::write_file_atomic(path, &kept, 0o600)?;
    Ok((deleted, false))
}

fn read_settings(group_dir: &Path) -> Result<GroupSettings, LogError> {
    let path = group_dir.join(GROUP_FILE);
    let bytes = fs::read(&path).map_err(|e| FsError::new("read", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| LogError::CorruptGroup { path, source })
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().map(|e| e.path()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FsError::new("list", dir, e).into()),
    }
}

/// (stream name, file) of every stream file in a group's `streams/`.
fn stream_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, LogError> {
    Ok(list_dir(dir)?
        .into_iter()
        .filter_map(|path| {
            let file_name = path.file_name()?.to_str()?;
            let encoded = file_name.strip_suffix(&format!(".{STREAM_EXT}"))?;
            Some((decode_name(encoded)?, path))
        })
        .collect())
}

/// S8.3, checked by the rule the stack file uses (`berth_spec::rules`).
pub fn validate_group(name: &str) -> Result<(), LogError> {
    match berth_spec::rules::log_group_problem(name) {
        None => Ok(()),
        Some(problem) => Err(LogError::InvalidGroup {
            name: name.to_owned(),
            problem,
        }),
    }
}

/// S8.3: 1–512 characters, no `:` or `*`. Control characters are refused too (they have no
/// business in a stream name and would garble listings).
pub fn validate_stream(name: &str) -> Result<(), LogError> {
    let ok = (1..=512).contains(&name.chars().count())
        && !name.contains([':', '*'])
        && !name.chars().any(char::is_control)
        // Percent-encoded, the file name must stay under the usual 255-byte limit.
        && encode_name(name).len() + ".".len() + STREAM_EXT.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidStream {
            name: name.to_owned(),
        })
    }
}

/// Percent-encodes every byte outside `[A-Za-z0-9._-]` (and a leading `.`, so no name becomes
/// a hidden or special file).
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads the complete lines of a stream file from `offset`; returns the events and the offset
/// after the last complete line (a line still being written is left for next time).
fn read_events_from(path: &Path, offset: u64) -> Result<(Vec<StoredEvent>, u64), std::io::Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let events = bytes[..complete]
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    Ok((events, offset + complete as u64))
}

/// Writes `event` as one line into `out` (kept here so sink and store agree on the format).
fn write_line(out: &mut impl Write, event: &StoredEvent) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_file_names() {
        for name in [
            "/ecs/backend",
            "ecs/backend-app/0123abcd",
            "a#b",
            ".hidden",
            "é ü",
        ] {
            let encoded = encode_name(name);
            assert!(
                !encoded.contains('/') && !encoded.starts_with('.'),
                "{encoded}"
            );
            assert_eq!(decode_name(&encoded).as_deref(), Some(name));
        }
        assert_eq!(encode_name("/ecs/backend"), "%2Fecs%2Fbackend");
    }

    #[test]
    fn name_rules() {
        assert!(validate_group("/ecs/backend").is_ok());
        assert!(validate_group("").is_err());
        assert!(validate_group("a b").is_err());
        assert!(validate_group(&"a".repeat(513)).is_err());
        assert!(validate_stream("ecs/backend-app/0123").is_ok());
        assert!(validate_stream("a:b").is_err());
        assert!(validate_stream("a*").is_err());
        assert!(validate_stream("").is_err());
        assert_eq!(
            stream_name("ecs", "backend-app", "abc"),
            "ecs/backend-app/abc"
        );
    }
}
