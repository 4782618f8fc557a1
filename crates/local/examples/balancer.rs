//! Berth's load balancer alone, in front of the backends given on the command line (one
//! target group, round robin, health checks on `/`); runs until interrupted. Used by
//! `bench/balancer.sh`.
//!
//! `cargo run --release -p berth-local --example balancer -- 127.0.0.1:8080 127.0.0.1:9001 127.0.0.1:9002`

use std::net::SocketAddr;
use std::time::Duration;

use berth_local::balancer::{
    Balancer, Forward, HealthCheckConfig, ListenerConfig, TargetGroupConfig,
};

// The balancer runs its own worker threads; this runtime only hosts the health checks.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: balancer <listen address> <backend address>...";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let backends = args
        .map(|a| a.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    if backends.is_empty() {
        return Err(usage.into());
    }
    let config = ListenerConfig {
        rules: Vec::new(),
        default_action: Forward::to("backends"),
        target_groups: vec![TargetGroupConfig {
            health_check: HealthCheckConfig {
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                healthy_threshold: 2,
                ..HealthCheckConfig::default()
            },
            ..TargetGroupConfig::new("backends")
        }],
        idle_timeout: Duration::from_secs(60),
    };
    let balancer = Balancer::bind(listen, config).await?;
    for backend in &backends {
        balancer.register("backends", *backend)?;
    }
    tokio::signal::ctrl_c().await?;
    balancer.shutdown().await;
    Ok(())
}
