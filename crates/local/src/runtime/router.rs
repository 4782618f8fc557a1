//! The embedded load balancer as the scheduler's [`TargetRouter`].

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use futures_util::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::balancer::{Balancer, RuleRef};
use crate::service::{BoxFuture, BoxStream, RuleWeight, TargetHealthView, TargetRouter};

/// Drives a [`Balancer`]: registration, draining, target health. Test listeners
/// (`runtime::traffic`) are mirrors: every target registered or deregistered in a target
/// group is in theirs too, when they have one of that name; health, draining and weights are
/// the main balancer's.
pub struct BalancerRouter {
    balancer: Balancer,
    mirrors: Mutex<Vec<Balancer>>,
}

impl BalancerRouter {
    pub fn new(balancer: Balancer) -> Self {
        Self {
            balancer,
            mirrors: Mutex::new(Vec::new()),
        }
    }

    fn mirrors(&self) -> Vec<Balancer> {
        self.mirrors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn add_mirror(&self, mirror: Balancer) {
        self.mirrors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mirror);
    }

    pub fn remove_mirror(&self, mirror: &Balancer) {
        self.mirrors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|m| m.local_addr() != mirror.local_addr());
    }
}

impl TargetRouter for BalancerRouter {
    fn register(&self, target_group: &str, target: SocketAddr) {
        if let Err(error) = self.balancer.register(target_group, target) {
            tracing::warn!(%error, target_group, %target, "cannot register target");
        }
        for mirror in self.mirrors() {
            // A mirror without this group does not route to it.
            let _ = mirror.register(target_group, target);
        }
    }

    fn deregister(&self, target_group: &str, target: SocketAddr) {
        // Already gone (drained, never registered) is what we want anyway.
        if let Err(error) = self.balancer.deregister(target_group, target) {
            tracing::debug!(%error, target_group, %target, "deregistration did nothing");
        }
        for mirror in self.mirrors() {
            let _ = mirror.deregister(target_group, target);
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

    fn traffic_weights(&self, target_group: &str) -> Vec<RuleWeight> {
        self.balancer
            .rule_weights()
            .into_iter()
            .filter_map(|(rule, action)| {
                let weight = action
                    .target_groups
                    .iter()
                    .find(|g| g.name == target_group)?
                    .weight;
                // Compiled rules have a positive total (BalancerError::EmptyForward).
                let total: u32 = action.target_groups.iter().map(|g| g.weight).sum();
                Some(RuleWeight {
                    rule: match rule {
                        RuleRef::Default => "default".to_owned(),
                        RuleRef::Priority(p) => format!("priority {p}"),
                    },
                    weight,
                    percent: f64::from(weight) * 100.0 / f64::from(total.max(1)),
                })
            })
            .collect()
    }

    fn request_count(&self, target_group: &str) -> Option<u64> {
        self.balancer.request_count(target_group)
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
