//! The embedded load balancer as the scheduler's [`TargetRouter`].

use std::net::SocketAddr;

use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::balancer::Balancer;
use crate::service::{BoxFuture, BoxStream, TargetHealthView, TargetRouter};

/// Drives a [`Balancer`]: registration, draining, target health.
pub struct BalancerRouter {
    balancer: Balancer,
}

impl BalancerRouter {
    pub fn new(balancer: Balancer) -> Self {
        Self { balancer }
    }
}

impl TargetRouter for BalancerRouter {
    fn register(&self, target_group: &str, target: SocketAddr) {
        if let Err(error) = self.balancer.register(target_group, target) {
            tracing::warn!(%error, target_group, %target, "cannot register target");
        }
    }

    fn deregister(&self, target_group: &str, target: SocketAddr) {
        // Already gone (drained, never registered) is what we want anyway.
        if let Err(error) = self.balancer.deregister(target_group, target) {
            tracing::debug!(%error, target_group, %target, "deregistration did nothing");
        }
    }

    fn wait_drained(&self, target_group: &str, target: SocketAddr) -> BoxFuture<'static, ()> {
        let balancer = self.balancer.clone();
        let target_group = target_group.to_owned();
        Box::pin(async move { balancer.wait_drained(&target_group, target).await })
    }

    fn target_health(&self, target_group: &str) -> Vec<TargetHealthView> {
        self.balancer
            .target_health()
            .into_iter()
            .filter(|t| t.target_group == target_group)
            .map(|t| TargetHealthView {
                target: t.target,
                state: t.state,
                reason: t.reason.map(|r| r.as_str().to_owned()),
                description: t.description,
            })
            .collect()
    }

    fn health_changes(&self, target_group: &str) -> BoxStream<'static, ()> {
        let receiver = self.balancer.subscribe();
        let target_group = target_group.to_owned();
        futures_util::stream::unfold(
            (receiver, target_group),
            |(mut receiver, target_group)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(change) if change.target_group != target_group => continue,
                        // Lagged: changes were missed, so something changed.
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            return Some(((), (receiver, target_group)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        )
        .boxed()
    }
}
