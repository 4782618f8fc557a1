//! Concurrent writers: the counters the triggers keep (the listing cache's `files_version`,
//! the stats totals) must not make one writer's open transaction block every other writer,
//! or uploads take turns at one WAL flush each (issue 12).

use sqlx::{Connection, PgConnection};

use crate::common::{Env, json};

/// Store one file the way an upload does (blob, then row), in the connection's current
/// transaction or its own.
async fn insert_file(connection: &mut PgConnection, content: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blobs (sha256, size, content) \
         VALUES (sha256(convert_to($1, 'UTF8')), octet_length($1), convert_to($1, 'UTF8'))",
    )
    .bind(content)
    .execute(&mut *connection)
    .await?;
    sqlx::query(
        "INSERT INTO files (id, filename, original_filename, mime_type, size, sha256) \
         VALUES (gen_random_uuid(), 'f.txt', 'f.txt', 'text/plain', octet_length($1), \
                 sha256(convert_to($1, 'UTF8')))",
    )
    .bind(content)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The counter slot a connection writes (`counter_slot()` of migration 0004, spelled out so
/// that the test also runs against a schema without it).
async fn slot(connection: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid() % 32")
        .fetch_one(connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_writer_inside_its_transaction_does_not_block_another() {
    let env = Env::start();
    let mut first = PgConnection::connect(&env.pg.url()).await.unwrap();
    let first_slot = slot(&mut first).await;
    // Two writers on different connections mostly land in different slots; pick such a pair
    // (backend pids are handed out in order, so this takes one or two tries).
    let mut second = None;
    for _ in 0..64 {
        let mut candidate = PgConnection::connect(&env.pg.url()).await.unwrap();
        if slot(&mut candidate).await != first_slot {
            second = Some(candidate);
            break;
        }
    }
    let mut second = second.expect("a connection in another counter slot");

    sqlx::query("BEGIN").execute(&mut first).await.unwrap();
    insert_file(&mut first, "written first, committed last")
        .await
        .unwrap();
    // With one counter row for everyone, this waited for the first writer's commit.
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut second)
        .await
        .unwrap();
    insert_file(&mut second, "written second, committed first")
        .await
        .expect("the second writer is not blocked by the first's open transaction");
    let (_, listed) = json(env.get("/api/files").await).await;
    assert_eq!(listed["total"], 1, "{listed}");

    sqlx::query("COMMIT").execute(&mut first).await.unwrap();
    // Both writes count: the cached listing moves on, the totals add up.
    let (_, listed) = json(env.get("/api/files").await).await;
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(listed["count"], 2, "{listed}");
    crate::files::assert_stats_match_the_rows(&env).await;
}

/// The summary is served from a cache for a quarter of a second (`stats_cache`): a write
/// through another task (here, another connection) shows once the cached summary has aged,
/// a write through this API at once.
#[tokio::test]
async fn the_summary_shows_another_tasks_write_once_cached_and_its_own_at_once() {
    let env = Env::start();
    let (_, before) = json(env.get("/api/files/stats/summary").await).await;
    assert_eq!(before["data"]["total_files"], 0, "{before}");
    let mut other = PgConnection::connect(&env.pg.url()).await.unwrap();
    insert_file(&mut other, "through another task")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, body) = json(env.get("/api/files/stats/summary").await).await;
        if body["data"]["total_files"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the summary never showed the other task's write: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    env.upload_ok("mine.txt", None, b"through this API".to_vec())
        .await;
    let (_, after) = json(env.get("/api/files/stats/summary").await).await;
    assert_eq!(after["data"]["total_files"], 2, "{after}");
    crate::files::assert_stats_match_the_rows(&env).await;
}
