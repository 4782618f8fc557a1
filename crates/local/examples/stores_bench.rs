//! Throughput of the local stores (`bench/stores.sh` runs it in release):
//! log sinks and merged queries, parameter puts and decrypted gets, a registry push.
//!
//!   stores_bench [ARTIFACT]     # ARTIFACT: a large file to push (optional)

use std::path::Path;
use std::time::Instant;

use berth_local::logs::{LogQuery, LogStore, stream_name};
use berth_local::params::{ParamStore, ParameterType, PutOptions};
use berth_local::registry::Registry;
use berth_local::state_dir::StateDir;
use futures_util::StreamExt;

const STREAMS: usize = 4;
const LINES_PER_STREAM: usize = 50_000;
const PARAMETERS: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let state = StateDir::at(dir.path().join(".berth"));
    state.ensure()?;

    let logs = LogStore::open(&state)?;
    logs.create_group("/ecs/backend", Some(30))?;
    let sinks = (0..STREAMS)
        .map(|i| {
            logs.sink(
                "/ecs/backend",
                &stream_name("ecs", "backend-app", &format!("task{i}")),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for n in 0..LINES_PER_STREAM {
        for sink in &sinks {
            sink.write_line(&format!(
                "GET /api/files?page={n} 200 1.2ms request_id=abcdef0123456789"
            ));
        }
    }
    for sink in &sinks {
        sink.flush().await;
    }
    let lines = STREAMS * LINES_PER_STREAM;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| log sinks: {lines} lines into {STREAMS} streams, on disk | {secs:.3} s | {:.0} lines/s |",
        lines as f64 / secs
    );

    let started = Instant::now();
    let events = logs.query(LogQuery::new("/ecs/backend"))?.count().await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| merged query of {events} events ({STREAMS} streams, time order) | {secs:.3} s | {:.0} events/s |",
        events as f64 / secs
    );

    let params = ParamStore::open(&state)?;
    let secure = PutOptions {
        kind: Some(ParameterType::SecureString),
        ..PutOptions::default()
    };
    let started = Instant::now();
    for i in 0..PARAMETERS {
        params.put(&format!("/bench/p{i}"), "value-0123456789", &secure)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| {PARAMETERS} SecureString puts (encrypt, fsync'd atomic rewrite) | {secs:.3} s | {:.2} ms each |",
        secs * 1000.0 / PARAMETERS as f64
    );
    let started = Instant::now();
    for i in 0..PARAMETERS {
        params.get(&format!("/bench/p{i}"), true)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| {PARAMETERS} decrypted gets | {secs:.3} s | {:.2} ms each |",
        secs * 1000.0 / PARAMETERS as f64
    );

    if let Some(artifact) = std::env::args().nth(1) {
        let registry = Registry::open(&state)?;
        let started = Instant::now();
        let image = registry.push("bench-repo", Path::new(&artifact), &[])?;
        let secs = started.elapsed().as_secs_f64();
        let mib = image.size as f64 / (1024.0 * 1024.0);
        println!(
            "| registry push of a {mib:.1} MiB artifact (copy, SHA-256, read-only) | {secs:.3} s | {:.0} MiB/s |",
            mib / secs
        );
        let started = Instant::now();
        registry.push("bench-repo", Path::new(&artifact), &["again".to_owned()])?;
        let secs = started.elapsed().as_secs_f64();
        println!("| the same content again (deduplicated) | {secs:.3} s | |");
        // Snapshots are read-only; make them removable for the temporary directory's drop.
        registry.apply_lifecycle("bench-repo", 0, &Default::default())?;
    }
    Ok(())
}
