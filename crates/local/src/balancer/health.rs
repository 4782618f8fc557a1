//! The health checker: one task per registered target, sending `GET <path>` every interval
//! on a fresh connection (S5.5) and feeding the results to the target's state machine.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{MissedTickBehavior, interval};

use super::config::HealthCheckConfig;
use super::state::CheckResult;
use super::target_group::{Target, TargetGroup};
use super::{Shared, health_change};

/// Checks `target` until its `checks` token is cancelled, publishing every change of state or
/// reason.
pub(crate) async fn run(shared: Arc<Shared>, group: Arc<TargetGroup>, target: Arc<Target>) {
    let settings = &group.config.health_check;
    // Each result stands for a whole interval and a slow response does not shift the
    // schedule (S5.5); the first check goes out right after registration.
    let mut ticker = interval(settings.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let result = tokio::select! {
            () = target.checks.cancelled() => return,
            result = async {
                ticker.tick().await;
                probe(target.addr, settings).await
            } => result,
        };
        let change = {
            let mut health = target.health();
            let previous = health.state();
            health
                .record(
                    result,
                    settings.healthy_threshold,
                    settings.unhealthy_threshold,
                )
                .then(|| {
                    target.publish(health.state());
                    health_change(&group.config.name, target.addr, previous, &health)
                })
        };
        if let Some(change) = change {
            shared.publish(change);
        }
    }
}

/// One health check: a `GET` on a new connection, closed afterwards.
pub(crate) async fn probe(addr: SocketAddr, settings: &HealthCheckConfig) -> CheckResult {
    match tokio::time::timeout(settings.timeout, status_of(addr, &settings.path)).await {
        Err(_elapsed) => CheckResult::Timeout,
        Ok(Err(error)) => {
            tracing::debug!(target = %addr, %error, "health check failed");
            CheckResult::Failed
        }
        Ok(Ok(status)) if settings.matcher.matches(status) => CheckResult::Passed,
        Ok(Ok(status)) => CheckResult::ResponseCodeMismatch(status),
    }
}

/// Why a check got no status: only logged, the state machine needs no more detail.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    #[error("invalid health-check request")]
    Request(#[source] http::Error),
    #[error("http exchange failed")]
    Http(#[source] hyper::Error),
    #[error("connection closed before a response")]
    Closed,
}

async fn status_of(addr: SocketAddr, path: &str) -> Result<u16, ProbeError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(ProbeError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ProbeError::Http)?;
    let request = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(ProbeError::Request)?;
    let response = sender.send_request(request);
    tokio::pin!(connection, response);
    // Drive the connection while waiting for the response; dropping both afterwards closes it.
    tokio::select! {
        biased;
        response = &mut response => response.map(|r| r.status().as_u16()).map_err(ProbeError::Http),
        result = &mut connection => match result {
            Err(error) => Err(ProbeError::Http(error)),
            // The connection may finish in the same poll that delivered the response.
            Ok(()) => match response.await {
                Ok(response) => Ok(response.status().as_u16()),
                Err(_) => Err(ProbeError::Closed),
            },
        },
    }
}
