//! Log groups: writing through sinks, querying merged streams, filters, since, retention.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use berth_local::logs::{
    FilterPattern, LogError, LogEvent, LogQuery, LogStore, MAX_EVENT_BYTES, pipe_lines, stream_name,
};
use berth_local::state_dir::StateDir;
use berth_local::task::OutputStream;
use futures_util::StreamExt;

const DAY_MS: i64 = 86_400_000;

fn store(dir: &std::path::Path) -> LogStore {
    LogStore::open(&StateDir::at(dir.join(".berth"))).unwrap()
}

async fn collect(store: &LogStore, query: LogQuery) -> Vec<LogEvent> {
    store
        .query(query)
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await
}

fn messages(events: &[LogEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[tokio::test]
async fn streams_merge_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    logs.create_group("/ecs/backend", Some(30)).unwrap();
    let a = stream_name("ecs", "backend-app", "aaaa");
    let b = stream_name("ecs", "backend-app", "bbbb");
    logs.append(
        "/ecs/backend",
        &a,
        &[(1000, "a1"), (3000, "a3"), (5000, "a5")],
    )
    .unwrap();
    logs.append(
        "/ecs/backend",
        &b,
        &[(2000, "b2"), (3000, "b3"), (4000, "b4")],
    )
    .unwrap();
    let events = collect(&logs, LogQuery::new("/ecs/backend")).await;
    assert_eq!(messages(&events), vec!["a1", "b2", "a3", "b3", "b4", "a5"]);
    assert_eq!(events[1].stream, "ecs/backend-app/bbbb");
    assert_eq!(events[1].timestamp, 2000);
    assert_eq!(logs.streams("/ecs/backend").unwrap(), vec![a, b]);
    assert_eq!(logs.groups().unwrap(), vec!["/ecs/backend"]);

    // Files are private.
    let group_dir = tmp.path().join(".berth/logs/%2Fecs%2Fbackend");
    assert!(group_dir.is_dir());
    let stream_file = group_dir.join("streams/ecs%2Fbackend-app%2Faaaa.jsonl");
    assert_eq!(
        fs::metadata(&stream_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn filter_and_since() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    let s = "ecs/web/1";
    logs.append(
        "/ecs/frontend",
        s,
        &[
            (1000, "GET /health 200"),
            (2000, "GET /api/files 200"),
            (3000, "ERROR db connection refused"),
            (4000, "GET /api/files 500"),
        ],
    )
    .unwrap();
    let query = |filter: &str, since: Option<i64>| LogQuery {
        filter: FilterPattern::parse(filter).unwrap(),
        since,
        ..LogQuery::new("/ecs/frontend")
    };
    let got = collect(&logs, query("GET -health", None)).await;
    assert_eq!(
        messages(&got),
        vec!["GET /api/files 200", "GET /api/files 500"]
    );
    let got = collect(&logs, query("\"connection refused\"", None)).await;
    assert_eq!(messages(&got), vec!["ERROR db connection refused"]);
    let got = collect(&logs, query("?ERROR ?500", None)).await;
    assert_eq!(got.len(), 2);
    let got = collect(&logs, query("", Some(3000))).await;
    assert_eq!(
        messages(&got),
        vec!["ERROR db connection refused", "GET /api/files 500"]
    );
    assert!(matches!(
        logs.query(LogQuery::new("/ecs/none")),
        Err(LogError::GroupNotFound { .. })
    ));
}

#[tokio::test]
async fn retention_deletes_old_events_and_empty_streams() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    logs.create_group("/ecs/backend", Some(1)).unwrap();
    let now = 10 * DAY_MS;
    logs.append("/ecs/backend", "old/only", &[(now - 3 * DAY_MS, "ancient")])
        .unwrap();
    logs.append(
        "/ecs/backend",
        "mixed/one",
        &[(now - 2 * DAY_MS, "stale"), (now - 1000, "fresh")],
    )
    .unwrap();
    let report = logs.apply_retention("/ecs/backend", now).unwrap();
    assert_eq!(report.events_deleted, 2);
    assert_eq!(report.streams_deleted, 1);
    assert_eq!(logs.streams("/ecs/backend").unwrap(), vec!["mixed/one"]);
    let events = collect(&logs, LogQuery::new("/ecs/backend")).await;
    assert_eq!(messages(&events), vec!["fresh"]);

    // Appending after a rewrite still lands in the live file.
    logs.append("/ecs/backend", "mixed/one", &[(now, "after")])
        .unwrap();
    let events = collect(&logs, LogQuery::new("/ecs/backend")).await;
    assert_eq!(messages(&events), vec!["fresh", "after"]);

    // Retention must be one of CloudWatch's values; none means forever.
    assert!(matches!(
        logs.create_group("/ecs/x", Some(2)),
        Err(LogError::InvalidRetention { days: 2 })
    ));
    logs.create_group("/ecs/forever", None).unwrap();
    logs.append("/ecs/forever", "s", &[(0, "epoch")]).unwrap();
    assert_eq!(
        logs.apply_retention("/ecs/forever", now)
            .unwrap()
            .events_deleted,
        0
    );
    assert!(matches!(
        logs.create_group("bad group", None),
        Err(LogError::InvalidGroup { .. })
    ));
    assert!(matches!(
        logs.append("/ecs/forever", "a:b", &[]),
        Err(LogError::InvalidStream { .. })
    ));
}

#[tokio::test]
async fn sink_captures_a_child_process_and_follow_sees_new_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    logs.create_group("/ecs/backend", Some(30)).unwrap();
    let sink = logs
        .sink("/ecs/backend", &stream_name("ecs", "backend-app", "t1"))
        .unwrap();

    let mut follow = logs
        .query(LogQuery {
            follow: true,
            poll_interval: Duration::from_millis(20),
            ..LogQuery::new("/ecs/backend")
        })
        .unwrap();

    let mut child = tokio::process::Command::new("sh")
        .args([
            "-c",
            "echo out-line; echo err-line >&2; printf 'no newline'",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (out_sink, err_sink) = (sink.clone(), sink.clone());
    let out =
        tokio::spawn(async move { pipe_lines(stdout, OutputStream::Stdout, &out_sink).await });
    let err =
        tokio::spawn(async move { pipe_lines(stderr, OutputStream::Stderr, &err_sink).await });
    child.wait().await.unwrap();
    out.await.unwrap();
    err.await.unwrap();
    sink.flush().await;

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(30), follow.next())
            .await
            .expect("follow delivers the new events")
            .unwrap()
            .unwrap();
        seen.push(event.message);
    }
    seen.sort();
    assert_eq!(seen, vec!["err-line", "no newline", "out-line"]);

    // A later line arrives on the same follow.
    sink.write_line("later");
    sink.flush().await;
    let event = tokio::time::timeout(Duration::from_secs(30), follow.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.message, "later");
    assert_eq!(event.stream, "ecs/backend-app/t1");
}

#[tokio::test]
async fn long_lines_are_split_like_awslogs() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    let sink = logs.sink("/ecs/big", "s/c/t").unwrap();
    let line = "x".repeat(MAX_EVENT_BYTES * 2 + 10);
    let input = format!("{line}\nshort\n");
    pipe_lines(input.as_bytes(), OutputStream::Stdout, &sink).await;
    sink.flush().await;
    let events = collect(&logs, LogQuery::new("/ecs/big")).await;
    let sizes: Vec<usize> = events.iter().map(|e| e.message.len()).collect();
    assert_eq!(sizes, vec![MAX_EVENT_BYTES, MAX_EVENT_BYTES, 10, 5]);
    assert_eq!(events[3].message, "short");
}

#[tokio::test]
async fn follow_survives_retention_rewriting_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    logs.create_group("/ecs/backend", Some(1)).unwrap();
    let now = 100 * DAY_MS;
    logs.append(
        "/ecs/backend",
        "s/c/t",
        &[(now - 2 * DAY_MS, "old"), (now - 10, "kept")],
    )
    .unwrap();
    let mut follow = logs
        .query(LogQuery {
            follow: true,
            poll_interval: Duration::from_millis(20),
            ..LogQuery::new("/ecs/backend")
        })
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), follow.next())
            .await
            .expect("an event arrives")
            .unwrap()
            .unwrap()
            .message
    };
    assert_eq!(next().await, "old");
    assert_eq!(next().await, "kept");
    // Retention replaces the file (a new inode) without "old"; then a new event arrives.
    assert_eq!(
        logs.apply_retention("/ecs/backend", now)
            .unwrap()
            .events_deleted,
        1
    );
    logs.append("/ecs/backend", "s/c/t", &[(now, "new")])
        .unwrap();
    // "kept" is not delivered twice.
    assert_eq!(next().await, "new");
}

/// The bytes a group's stream files hold on disk.
fn group_bytes(root: &std::path::Path) -> u64 {
    let mut total = 0;
    for group in fs::read_dir(root.join(".berth/logs")).unwrap() {
        let streams = group.unwrap().path().join("streams");
        for stream in fs::read_dir(streams).unwrap() {
            total += stream.unwrap().metadata().unwrap().len();
        }
    }
    total
}

/// Two tasks writing 1 MiB each into a group capped at 64 KiB: the group stays near its cap
/// (at most one check interval over it per writing task) and what it keeps is the newest.
#[tokio::test]
async fn a_group_over_its_size_cap_drops_its_oldest_events_first() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = 64 * 1024;
    let logs = store(tmp.path()).with_group_cap(cap);
    logs.create_group("/ecs/chatty", Some(30)).unwrap();
    let sinks = [
        logs.sink("/ecs/chatty", "ecs/app/t1").unwrap(),
        logs.sink("/ecs/chatty", "ecs/app/t2").unwrap(),
    ];
    let line = "y".repeat(200);
    for i in 0..5_000 {
        for sink in &sinks {
            sink.write_line(&format!("{i:05} {line}"));
        }
        if i % 100 == 0 {
            // Let the writers batch and check as they would under a real task's output, and
            // spread the events over distinct milliseconds (their timestamps' resolution), or
            // the whole run could share one millisecond, which the cap never drops.
            sinks[0].flush().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for sink in &sinks {
        sink.flush().await;
    }
    let on_disk = group_bytes(tmp.path());
    // Each sink checks after writing a sixteenth of the cap.
    assert!(
        on_disk <= cap + 2 * cap / 16 + 2 * 512,
        "{on_disk} bytes on disk"
    );
    let events = collect(&logs, LogQuery::new("/ecs/chatty")).await;
    assert!(!events.is_empty());
    let first: u32 = events[0].message[..5].parse().unwrap();
    let last: u32 = events.last().unwrap().message[..5].parse().unwrap();
    assert_eq!(last, 4_999, "the newest event is kept");
    assert!(
        first > 4_000,
        "the oldest events went first, kept from {first}"
    );
}

/// `apply_size_cap` trims a group written without a cap, and says what it dropped.
#[test]
fn apply_size_cap_trims_a_group_to_its_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = store(tmp.path());
    logs.create_group("/ecs/old", None).unwrap();
    let message = "z".repeat(100);
    let events: Vec<(i64, &str)> = (0..1_000).map(|t| (t, message.as_str())).collect();
    logs.append("/ecs/old", "s/c/t", &events).unwrap();
    let report = logs.apply_size_cap("/ecs/old", 40_000).unwrap();
    assert!(report.events_deleted > 0);
    assert!(group_bytes(tmp.path()) <= 40_000);
    assert_eq!(
        logs.apply_size_cap("/ecs/old", 40_000)
            .unwrap()
            .events_deleted,
        0
    );
}
