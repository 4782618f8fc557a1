//! `berth up -e production` of the example stack on an empty account (moto), parallel
//! against sequential: API calls made (all, mutating) and wall time, medians of interleaved
//! rounds, each on a fresh moto. Prints the rows of BENCHMARKS.md's AWS table.
//!
//! moto answers on loopback in a few milliseconds of its own (Python) CPU, where AWS takes
//! tens of milliseconds of network and service time per call; so each mode also runs with
//! a fixed delay added to every call before it is sent (`LATENCY_MS`, default 50), which is
//! what parallel calls overlap.
//!
//!   cargo run -p berth-aws --example up_bench [ROUNDS]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use berth_aws::{Clients, Engine, Options, silent};
use berth_testkit::Moto;

/// The SDK's HTTP client with `delay` added before every request.
#[derive(Debug)]
struct Delayed {
    inner: SharedHttpClient,
    delay: Duration,
}

#[derive(Debug)]
struct DelayedConnector {
    inner: SharedHttpConnector,
    delay: Duration,
}

impl HttpClient for Delayed {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(DelayedConnector {
            inner: self.inner.http_connector(settings, components),
            delay: self.delay,
        })
    }
}

impl HttpConnector for DelayedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, delay) = (self.inner.clone(), self.delay);
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(delay).await;
            inner.call(request).await
        })
    }
}

struct Run {
    wall: Duration,
    calls: usize,
    mutating: usize,
}

async fn one(parallel: bool, latency: Duration) -> Run {
    let moto = Moto::start();
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml");
    let stack = berth_spec::load(&path).expect("the example stack");
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .load()
        .await;
    // The SDK picks its default client per service client, so the delayed one wraps a
    // plain-HTTP client of the same kind (moto listens on http://127.0.0.1).
    let sdk = if latency.is_zero() {
        sdk
    } else {
        sdk.to_builder()
            .http_client(Delayed {
                inner: aws_smithy_http_client::Builder::new().build_http(),
                delay: latency,
            })
            .build()
    };
    let aws = stack
        .environment("production")
        .and_then(|e| e.as_aws())
        .expect("production runs on AWS")
        .clone();
    let engine = Engine::with_clients("production", &aws, Clients::from_sdk(&sdk))
        .await
        .expect("moto answers");
    engine.recorder().clear();
    // The default waits (5 s polls): moto makes every resource available at once, so a
    // wait ends at its first check, as it would not on AWS (NAT gateways, RDS, the ALB).
    let options = Options {
        parallel,
        ..Options::default()
    };
    let start = Instant::now();
    let (snapshot, desired, plan) = engine.plan_up(&stack).await.expect("plan");
    engine
        .apply(&stack, (&snapshot, &desired, &plan), options, &silent())
        .await
        .expect("up");
    let wall = start.elapsed();
    Run {
        wall,
        calls: engine.recorder().calls().len(),
        mutating: engine.recorder().mutating().len(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let latency = Duration::from_millis(
        std::env::var("LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    for delay in [Duration::ZERO, latency] {
        let (mut par, mut seq) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            par.push(one(true, delay).await);
            seq.push(one(false, delay).await);
        }
        for (name, runs) in [("parallel", &par), ("sequential", &seq)] {
            let walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
            let each: Vec<String> = walls
                .iter()
                .map(|w| format!("{:.2}", w.as_secs_f64()))
                .collect();
            let calls: Vec<String> = runs
                .iter()
                .map(|r| format!("{}/{}", r.calls, r.mutating))
                .collect();
            println!(
                "| {name} | {} ms | {:.2} s | {} | {} |",
                delay.as_millis(),
                median(walls).as_secs_f64(),
                each.join(" / "),
                calls.join(" / "),
            );
        }
    }
}
