//! Writing a task's output into its log stream.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::{StoredEvent, write_line};
use crate::state_dir::FsError;
use crate::task::{OutputSink, OutputStream};

/// The largest event the Docker `awslogs` driver sends: 262,144 bytes less the 26 bytes of
/// per-event overhead (S8.6). Longer lines are split into several events.
pub const MAX_EVENT_BYTES: usize = 262_144 - 26;

enum Command {
    Line { timestamp: i64, message: String },
    Flush(oneshot::Sender<()>),
}

/// Appends lines to one log stream from a writer task of its own. Cheap to clone; the writer
/// ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LogSink {
    tx: mpsc::UnboundedSender<Command>,
    path: PathBuf,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line { .. } => "Line",
            Self::Flush(_) => "Flush",
        })
    }
}

/// The size cap of the group a sink writes to.
#[derive(Debug, Clone)]
pub(super) struct GroupCap {
    pub streams: PathBuf,
    pub bytes: u64,
}

impl GroupCap {
    /// How much one sink writes between two checks of its group's size. Each writing task
    /// checks on its own, so a group can be over its cap by this much per task between checks.
    fn check_every(&self) -> u64 {
        (self.bytes / 16).max(4096)
    }
}

impl LogSink {
    pub(super) fn spawn(path: PathBuf, cap: Option<GroupCap>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(path.clone(), cap, rx));
        Self { tx, path }
    }

    /// The stream's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one line of output now (split when longer than [`MAX_EVENT_BYTES`]).
    pub fn write_line(&self, line: &str) {
        let timestamp = chrono::Utc::now().timestamp_millis();
        for chunk in split_message(line) {
            // The writer is gone only when the runtime shuts down; the line goes with it.
            let _ = self.tx.send(Command::Line {
                timestamp,
                message: chunk.to_owned(),
            });
        }
    }

    /// Waits until every line written so far is on disk.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl OutputSink for LogSink {
    fn line(&self, _stream: OutputStream, line: &str) {
        self.write_line(line);
    }
}

/// Reads `pipe` (a child's stdout or stderr) into `sink` line by line until it closes,
/// splitting lines longer than [`MAX_EVENT_BYTES`] as they arrive so a child printing without
/// newlines cannot make berth buffer without bound. Bytes that are not UTF-8 are replaced
/// (U+FFFD), never a reason to stop reading: a reader that stopped would leave the child
/// blocked on a full pipe.
pub async fn pipe_lines<S: OutputSink + ?Sized>(
    pipe: impl AsyncRead + Unpin,
    stream: OutputStream,
    sink: &S,
) {
    let mut reader = BufReader::new(pipe);
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(error) => {
                tracing::debug!(%error, "task output pipe closed");
                break;
            }
        };
        let (taken, line_end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = MAX_EVENT_BYTES - pending.len();
        let used = taken.min(room);
        let content = if line_end && used == taken {
            &buf[..used - 1]
        } else {
            &buf[..used]
        };
        pending.extend_from_slice(content);
        reader.consume(used);
        if (line_end && used == taken) || pending.len() >= MAX_EVENT_BYTES {
            emit(stream, sink, &mut pending);
        }
    }
    if !pending.is_empty() {
        emit(stream, sink, &mut pending);
    }
}

fn emit<S: OutputSink + ?Sized>(stream: OutputStream, sink: &S, pending: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(pending);
    sink.line(stream, text.strip_suffix('\r').unwrap_or(&text));
    pending.clear();
}

/// Splits a message into pieces of at most [`MAX_EVENT_BYTES`], on character boundaries.
fn split_message(message: &str) -> Vec<&str> {
    if message.len() <= MAX_EVENT_BYTES {
        return vec![message];
    }
    let mut pieces = Vec::new();
    let mut rest = message;
    while rest.len() > MAX_EVENT_BYTES {
        let mut cut = MAX_EVENT_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces.push(rest);
    pieces
}

pub(super) fn encode_event(buf: &mut Vec<u8>, timestamp: i64, message: &str) {
    let event = StoredEvent {
        timestamp,
        message: message.to_owned(),
    };
    // Writing JSON into a Vec cannot fail.
    let _ = write_line(buf, &event);
}

async fn write_loop(
    path: PathBuf,
    cap: Option<GroupCap>,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut buf = Vec::new();
    let mut unchecked = 0u64;
    while let Some(first) = rx.recv().await {
        // Batch whatever is queued: one write per burst, not per line.
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::Line { timestamp, message } => encode_event(&mut buf, timestamp, &message),
                Command::Flush(done) => flushes.push(done),
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            let bytes = std::mem::take(&mut buf);
            unchecked += bytes.len() as u64;
            let target = path.clone();
            let check = cap
                .clone()
                .filter(|cap| unchecked >= cap.check_every())
                .inspect(|_| unchecked = 0);
            let written = tokio::task::spawn_blocking(move || {
                append_locked(&target, &bytes)?;
                if let Some(cap) = check {
                    super::cap::enforce(&cap.streams, cap.bytes)?;
                }
                Ok::<_, super::LogError>(())
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "cannot write log events"),
                Err(error) => tracing::warn!(%error, "log writer task failed"),
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Appends `bytes` to the stream file under its lock. When retention replaced the file while
/// we waited for the lock, the handle points at the old one: open again.
pub(super) fn append_locked(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    for _ in 0..8 {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| FsError::new("open", path, e))?;
        file.lock().map_err(|e| FsError::new("lock", path, e))?;
        let same = match (file.metadata(), std::fs::metadata(path)) {
            (Ok(ours), Ok(current)) => ours.ino() == current.ino() && ours.dev() == current.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        return file
            .write_all(bytes)
            .map_err(|e| FsError::new("append to", path, e));
    }
    Err(FsError::new(
        "append to",
        path,
        std::io::Error::other("the file kept being replaced"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_split_on_char_boundaries() {
        let short = "hello";
        assert_eq!(split_message(short), vec![short]);
        let long = "é".repeat(MAX_EVENT_BYTES); // 2 bytes per char
        let pieces = split_message(&long);
        assert!(pieces.iter().all(|p| p.len() <= MAX_EVENT_BYTES));
        assert_eq!(pieces.concat(), long);
        assert_eq!(pieces.len(), 2);
    }
}
