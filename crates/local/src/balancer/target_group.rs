//! Target groups at run time: their targets, each target's health and in-flight count, and
//! the choice of a target for a request.
//!
//! The request path reads a group's targets through an `ArcSwap` snapshot and each target's
//! routing state through an atomic, so it takes no lock; registration, health changes and
//! draining (the control plane) serialize on a per-group mutex.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::algorithm::{self, Candidate};
use super::config::TargetGroupConfig;
use super::pool::Pool;
use super::state::{HealthStatus, TargetState};

/// Routing view of a target's state, mirrored in an atomic for the request path.
const ROUTE_HEALTHY: u8 = 0;
const ROUTE_NOT_HEALTHY: u8 = 1;
const ROUTE_DRAINING: u8 = 2;

/// One registered target (or a draining one).
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// `ip:port`, the `Host` for requests that came without one.
    pub(crate) host: HeaderValue,
    route: AtomicU8,
    in_flight: AtomicUsize,
    /// Woken when the last in-flight request of a draining target ends.
    idle: Notify,
    /// Deregistration is complete (nothing in flight): the task behind it may stop, though
    /// the target is listed as `draining` until its delay ends (S5.20).
    drained: AtomicBool,
    health: Mutex<HealthStatus>,
    /// Cancelled on deregistration or shutdown: stops the target's health checks.
    pub(crate) checks: CancellationToken,
    /// Keep-alive connections, one pool per worker thread.
    pools: Box<[Pool]>,
}

impl Target {
    pub(crate) fn new(addr: SocketAddr, checks: CancellationToken, workers: usize) -> Self {
        let host = HeaderValue::try_from(addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self {
            addr,
            host,
            route: AtomicU8::new(ROUTE_NOT_HEALTHY),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            drained: AtomicBool::new(false),
            health: Mutex::new(HealthStatus::registered()),
            checks,
            pools: (0..workers.max(1)).map(|_| Pool::default()).collect(),
        }
    }

    /// Closes every connection to the target, failing requests still in flight when the
    /// deregistration delay is over (S5.19).
    pub(crate) fn close_connections(&self) {
        for pool in &self.pools {
            pool.close_all();
        }
    }

    /// Worker `worker`'s connection pool to this target.
    pub(crate) fn pool(&self, worker: usize) -> &Pool {
        &self.pools[worker % self.pools.len()]
    }

    /// The target's health, for reading or for recording a check.
    pub(crate) fn health(&self) -> MutexGuard<'_, HealthStatus> {
        // The status is plain data: a panic elsewhere cannot leave it half-updated.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Mirrors a new state into the routing atomic; call with the health lock held.
    pub(crate) fn publish(&self, state: TargetState) {
        let route = match state {
            TargetState::Healthy => ROUTE_HEALTHY,
            TargetState::Initial | TargetState::Unhealthy => ROUTE_NOT_HEALTHY,
            TargetState::Draining | TargetState::Unused | TargetState::Unavailable => {
                ROUTE_DRAINING
            }
        };
        self.route.store(route, Ordering::SeqCst);
    }

    /// Resolves once no request is in flight to this (draining) target.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a request ending in between still wakes us.
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Marks the (draining) target as done with its requests.
    pub(crate) fn mark_drained(&self) {
        self.drained.store(true, Ordering::SeqCst);
    }

    /// Requests currently in flight to the target.
    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl Candidate for Arc<Target> {
    fn is_registered(&self) -> bool {
        self.route.load(Ordering::Relaxed) != ROUTE_DRAINING
    }
    fn is_healthy(&self) -> bool {
        self.route.load(Ordering::Relaxed) == ROUTE_HEALTHY
    }
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// One request in flight to a target; dropping it ends the request.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Target>);

impl InFlight {
    fn start(target: Arc<Target>) -> Self {
        target.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(target)
    }

    /// The target this request goes to.
    pub(crate) fn target(&self) -> &Target {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        if before == 1 && self.0.route.load(Ordering::SeqCst) == ROUTE_DRAINING {
            self.0.idle.notify_waiters();
        }
    }
}

/// A target group: configuration, targets and the round-robin turn counter.
#[derive(Debug)]
pub(crate) struct TargetGroup {
    pub(crate) config: TargetGroupConfig,
    targets: ArcSwap<Vec<Arc<Target>>>,
    /// Serializes changes to `targets` (register, deregister, removal after draining).
    membership: Mutex<()>,
    /// Woken whenever a target leaves the group.
    pub(crate) removed: Notify,
    turn: AtomicUsize,
    /// Requests routed to a target of the group, ever (CloudWatch's `RequestCount`, what
    /// autoscaling's requests per target is computed from).
    requests: AtomicU64,
}

impl TargetGroup {
    pub(crate) fn new(config: TargetGroupConfig) -> Self {
        Self {
            config,
            targets: ArcSwap::from_pointee(Vec::new()),
            membership: Mutex::new(()),
            removed: Notify::new(),
            turn: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Chooses the target for a request and counts the request in flight; `None` when no
    /// target is registered (→ 503).
    pub(crate) fn pick(&self) -> Option<InFlight> {
        let targets = self.targets.load();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let index = algorithm::pick(self.config.algorithm, &targets, turn)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(InFlight::start(Arc::clone(&targets[index])))
    }

    /// Requests routed to the group's targets so far.
    pub(crate) fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The current targets (registered and draining).
    pub(crate) fn targets(&self) -> Arc<Vec<Arc<Target>>> {
        self.targets.load_full()
    }

    /// The registered (non-draining) target at `addr`, if any.
    pub(crate) fn registered(&self, addr: SocketAddr) -> Option<Arc<Target>> {
        self.targets
            .load()
            .iter()
            .find(|t| t.addr == addr && t.is_registered())
            .cloned()
    }

    /// Whether a target at `addr` is registered or still finishing requests (draining and
    /// not yet drained).
    pub(crate) fn holds(&self, addr: SocketAddr) -> bool {
        self.targets
            .load()
            .iter()
            .any(|t| t.addr == addr && !t.drained.load(Ordering::SeqCst))
    }

    /// Whether any target (registered or draining) is at `addr`.
    pub(crate) fn contains(&self, addr: SocketAddr) -> bool {
        self.targets.load().iter().any(|t| t.addr == addr)
    }

    /// Adds `target` unless a registered target already has its address; returns whether
    /// it was added.
    pub(crate) fn add(&self, target: Arc<Target>) -> bool {
        let _guard = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.targets.load_full();
        if current
            .iter()
            .any(|t| t.addr == target.addr && t.is_registered())
        {
            return false;
        }
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(target);
        self.targets.store(Arc::new(next));
        true
    }

    /// Removes exactly this target (not a newer registration of the same address).
    pub(crate) fn remove(&self, target: &Arc<Target>) {
        {
            let _guard = self
                .membership
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let current = self.targets.load_full();
            let next: Vec<_> = current
                .iter()
                .filter(|t| !Arc::ptr_eq(t, target))
                .cloned()
                .collect();
            self.targets.store(Arc::new(next));
        }
        self.removed.notify_waiters();
    }
}
