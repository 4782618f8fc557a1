//! Upload load generator for `bench/api.sh`: `count` distinct small PNGs sent with
//! `clients` parallel clients; prints one JSON line with throughput and latencies.
//!
//! `cargo run --release --example upload_bench -- http://127.0.0.1:3001 200 8`

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

fn distinct_png(seed: usize) -> Vec<u8> {
    let image = RgbImage::from_fn(64, 64, |x, y| {
        Rgb([
            (x as usize * 3 + seed) as u8,
            (y as usize * 5 + seed / 256) as u8,
            ((x + y) as usize + seed * 7) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, ImageFormat::Png)
        .expect("encode a PNG in memory");
    out.into_inner()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3001".into());
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let offset: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    let files: Arc<Vec<Vec<u8>>> = Arc::new((0..count).map(|i| distinct_png(i + offset)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (files, next, client, base) =
            (files.clone(), next.clone(), client.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= files.len() {
                    break;
                }
                let part = reqwest::multipart::Part::bytes(files[i].clone())
                    .file_name(format!("bench-{}.png", i + offset))
                    .mime_str("image/png")
                    .expect("a valid MIME type");
                let t = Instant::now();
                let result = client
                    .post(format!("{base}/api/files/upload"))
                    .multipart(reqwest::multipart::Form::new().part("file", part))
                    .send()
                    .await;
                match result {
                    Ok(r) if r.status().as_u16() == 201 => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await.expect("worker finished");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"uploads\":{},\"failures\":{},\"clients\":{},\"seconds\":{:.3},\"uploads_per_s\":{:.1},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        latencies.len(),
        failures,
        clients,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
