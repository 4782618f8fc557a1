//! Several tasks on one database, database outages, configuration errors, graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use berth_testkit::{Postgres, Server, bin_path, http_get};

use crate::common::{Env, error_message, json, png, spawn_api, upload_to};

/// Upper bound on every wait for an event (generous: the machine may be busy).
const BOUND: Duration = Duration::from_secs(30);

#[tokio::test]
async fn two_api_processes_share_one_database() {
    // Started together: the migrations' advisory lock lets them take turns.
    let pg = Postgres::start();
    let a = spawn_api(&pg, &[]);
    let b = spawn_api(&pg, &[]);
    a.wait_until_ok("/api/health/ready");
    b.wait_until_ok("/api/health/ready");
    let client = reqwest::Client::new();
    let total = |api: &Server| {
        let response = http_get(api.port(), "/api/files").unwrap();
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        body["total"].as_i64().unwrap()
    };
    // B renders (and keeps) its listing before A changes anything.
    assert_eq!(total(&b), 0);
    let bytes = png(12, 12);
    let (status, body) =
        json(upload_to(&client, &a, "shared.png", None, bytes.clone()).await).await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().unwrap();
    let download = client
        .get(format!("{}/api/files/{id}/download", b.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(total(&b), 1, "B's listing sees A's upload at once");
    let (status, deleted) = json(
        client
            .delete(format!("{}/api/files/{id}", b.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    let gone = client
        .get(format!("{}/api/files/{id}", a.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(total(&a), 0, "A's listing sees B's delete at once");
    // A restart of a task (a deploy) keeps the data: the schema is migrated, never recreated.
    drop(a);
    let (status, kept) = json(upload_to(&client, &b, "kept.png", None, bytes).await).await;
    assert_eq!(status, 201, "{kept}");
    let c = spawn_api(&pg, &[]);
    c.wait_until_ok("/api/health/ready");
    assert_eq!(pg.psql("SELECT count(*) FROM files"), "1");
    assert_eq!(
        pg.psql("SELECT count(*) FROM _sqlx_migrations WHERE success"),
        pg.psql("SELECT count(*) FROM _sqlx_migrations"),
    );
}

#[tokio::test]
async fn an_older_binary_starts_on_a_newer_schema() {
    // What a rollback looks like to the database: a migration this binary does not know.
    let env = Env::start();
    env.pg.psql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer release', true, '\\x00', 0)",
    );
    let older = spawn_api(&env.pg, &[]);
    older.wait_until_ok("/api/health/ready");
    let listed = http_get(older.port(), "/api/files").unwrap();
    assert_eq!(listed.status, 200);
}

#[tokio::test]
async fn survives_a_postgres_restart_mid_traffic() {
    let mut env = Env::start();
    let record = env.upload_ok("before.png", None, png(6, 6)).await;
    let id = record["id"].as_str().unwrap().to_owned();
    // Warm the pool so that its connections go stale across the restart.
    for _ in 0..8 {
        assert_eq!(env.get("/api/files").await.status(), 200);
    }
    env.pg.stop();
    let (status, body) = json(env.get("/api/files").await).await;
    assert_eq!(status, 503, "{body}");
    error_message(&body);
    let (status, body) = json(env.upload("during.png", None, png(2, 2)).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        env.get("/api/health").await.status(),
        200,
        "liveness ignores the database"
    );
    assert_eq!(env.get("/api/health/ready").await.status(), 503);
    assert!(env.api.is_alive());

    env.pg.start_again();
    env.api.wait_until_ok("/api/health/ready");
    let (status, body) = json(env.get(&format!("/api/files/{id}")).await).await;
    assert_eq!(status, 200, "{body}");
    let mut ok = 0;
    for _ in 0..16 {
        if env.get("/api/files").await.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 16, "stale connections are replaced transparently");
    env.upload_ok("after.png", None, png(3, 3)).await;
    assert!(env.api.is_alive());
}

#[tokio::test]
async fn a_quick_postgres_restart_is_absorbed() {
    let env = Env::start();
    env.upload_ok("a.png", None, png(4, 4)).await;
    // Several pooled connections, all of which the restart kills.
    let warm: Vec<_> = (0..8).map(|_| env.get("/api/files?limit=1")).collect();
    for response in futures_util::future::join_all(warm).await {
        assert_eq!(response.status(), 200);
    }
    env.pg.stop();
    env.pg.start_again();
    // Dead connections are retried on fresh ones; a request may still see one 503 while
    // the pool turns over, never a 500, and the pool is whole again right after.
    let mut statuses = Vec::new();
    for _ in 0..16 {
        statuses.push(env.get("/api/files").await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 503).count() <= 1,
        "{statuses:?}"
    );
    assert!(statuses[8..].iter().all(|s| *s == 200), "{statuses:?}");
    let (status, body) = json(env.get("/api/files/stats/summary").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["total_files"], 1);
}

#[tokio::test]
async fn starts_while_postgres_is_down_and_recovers_without_restart() {
    let pg = Postgres::start();
    pg.stop();
    let api = spawn_api(&pg, &[]);
    let ready = http_get(api.port(), "/api/health/ready").unwrap();
    assert_eq!(ready.status, 503);
    let files = http_get(api.port(), "/api/files").unwrap();
    assert_eq!(files.status, 503);
    assert!(
        files.text().contains("\"success\":false"),
        "{}",
        files.text()
    );
    pg.start_again();
    api.wait_until_ok("/api/health/ready");
    assert_eq!(http_get(api.port(), "/api/files").unwrap().status, 200);
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    for (variable, value) in [
        ("PORT", "eighty"),
        ("DB_PORT", "0"),
        ("MAX_FILE_SIZE", "ten"),
        ("ALLOWED_FILE_TYPES", "application/x-sh"),
        ("FRONTEND_URL", "ftp//nope"),
    ] {
        let output = std::process::Command::new(bin_path("file-analyzer-api"))
            .env(variable, value)
            .env("DB_PASSWORD", "s3cret-never-printed")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(!stderr.contains("s3cret"));
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let pg = Postgres::start();
    let mut api: Server = spawn_api(&pg, &[("RUST_LOG", "info,file_analyzer_api=debug")]);
    api.wait_until_ok("/api/health/ready");

    // Start an upload, stop half-way through the body, deliver SIGTERM, then finish it.
    let boundary = "XBOUNDARYX";
    let body = [
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\nContent-Type: text/plain\r\n\r\n").into_bytes(),
        b"slow upload contents".to_vec(),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat();
    let mut stream = TcpStream::connect(("127.0.0.1", api.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /api/files/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..40]).unwrap();
    stream.flush().unwrap();
    api.wait_for_line(BOUND, |line| line.contains("receiving an upload"));
    api.signal("TERM");
    api.wait_for_line(BOUND, |line| line.contains("stop signal received"));
    // The listener closes (just after that line): no new connections.
    let deadline = std::time::Instant::now() + BOUND;
    while TcpStream::connect(("127.0.0.1", api.port())).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(api.is_alive(), "the in-flight request holds the shutdown");
    stream.write_all(&body[40..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let status = api
        .wait_timeout(Duration::from_secs(30))
        .expect("the process exits");
    assert_eq!(status.code(), Some(0), "{}", api.logs());
    assert_eq!(pg.psql("SELECT count(*) FROM files"), "1");
}

#[test]
fn sigint_stops_an_idle_server_with_exit_0() {
    let pg = Postgres::start();
    let mut api = spawn_api(&pg, &[]);
    api.signal("INT");
    let status = api
        .wait_timeout(Duration::from_secs(30))
        .expect("the process exits");
    assert_eq!(status.code(), Some(0), "{}", api.logs());
}

#[test]
fn contents_left_unreferenced_are_swept_at_start() {
    let pg = Postgres::start();
    let api = spawn_api(&pg, &[]);
    api.wait_until_ok("/api/health/ready");
    drop(api);
    // What a task that died between a delete and its clean-up leaves behind.
    pg.psql(
        "INSERT INTO blobs (sha256, size, content, created_at) \
         VALUES (sha256('orphan'), 6, 'orphan', now() - interval '1 hour')",
    );
    assert_eq!(pg.psql("SELECT count(*) FROM blobs"), "1");
    let api = spawn_api(&pg, &[]);
    api.wait_until_ok("/api/health/ready");
    let mut left = String::new();
    for _ in 0..200 {
        left = pg.psql("SELECT count(*) FROM blobs");
        if left == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left, "0", "{}", api.logs());
}

/// A multipart upload of one text file, as raw HTTP/1.1.
fn raw_upload(name: &str, contents: &[u8]) -> Vec<u8> {
    let boundary = "XBOUNDARYX";
    let body = [
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").into_bytes(),
        contents.to_vec(),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat();
    let head = format!(
        "POST /api/files/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body].concat()
}

/// Poll `sql` (one value) until it returns `want`, at most 30 s; returns the last value.
fn wait_for_value(pg: &Postgres, sql: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = pg.psql(sql);
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_abandoned_during_its_transaction_commits_and_leaves_no_open_transaction() {
    use sqlx::{Connection as _, PgConnection};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let env = Env::start();
    // Hold the rows every write to `files` updates (its trigger, one of the counter's
    // slots), so that the upload's transaction is under way, and waiting, when its client
    // leaves.
    let mut holder = PgConnection::connect(&env.pg.url()).await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query("SELECT version FROM files_version_slots FOR UPDATE")
        .execute(&mut *held)
        .await
        .unwrap();

    let mut client = tokio::net::TcpStream::connect(("127.0.0.1", env.api.port()))
        .await
        .unwrap();
    client
        .write_all(&raw_upload("left.txt", b"the client left"))
        .await
        .unwrap();
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE application_name = 'file-analyzer-api' AND wait_event_type = 'Lock'";
    assert_eq!(
        wait_for_value(&env.pg, waiting, "1"),
        "1",
        "{}",
        env.api.logs()
    );

    // The client goes away; the server, seeing the end of its input, drops the request and
    // closes the connection without an answer.
    client.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut answer))
        .await
        .expect("the server closes the abandoned connection")
        .unwrap();
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    held.commit().await.unwrap();
    // The whole body had arrived: the upload is stored all the same, in a transaction that
    // ended (before the fix it was dropped half-way, and its connection could go back to
    // the pool inside it).
    assert_eq!(
        wait_for_value(&env.pg, "SELECT count(*) FROM files", "1"),
        "1",
        "{}",
        env.api.logs()
    );
    let in_transaction = "SELECT count(*) FROM pg_stat_activity \
                          WHERE application_name = 'file-analyzer-api' \
                          AND state LIKE 'idle in transaction%'";
    assert_eq!(env.pg.psql(in_transaction), "0");

    // Later uploads run in transactions of their own: their time is now, not a stale one.
    let before = env.pg.psql("SELECT now()");
    let record = env.upload_ok("later.txt", None, b"later".to_vec()).await;
    let current = env.pg.psql(&format!(
        "SELECT created_at >= '{before}'::timestamptz FROM files WHERE id = '{}'",
        record["id"].as_str().unwrap()
    ));
    assert_eq!(current, "t", "{record}");
    assert_eq!(env.pg.psql(in_transaction), "0");
}
