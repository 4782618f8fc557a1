//! The embedded load balancer: one HTTP listener that behaves like an Application Load
//! Balancer (ECS-SEMANTICS §5).
//!
//! - Listener rules by priority with ALB path patterns, a default action, weighted forwards
//!   (`rules`).
//! - Target groups whose targets are health-checked and move through the ALB's states and
//!   reason codes (`state`, `health`); deregistration drains ([`Balancer::deregister`]).
//! - Forwarding with `X-Forwarded-*` and `X-Amzn-Trace-Id` (`headers`) over keep-alive
//!   pools (`pool`), fail-open when every target is unhealthy (`algorithm`), 502/503/504
//!   like the ALB (`proxy`); one worker thread per core serves requests.
//!
//! The runtime drives it: it maps the stack file into [`ListenerConfig`], registers task
//! addresses, watches [`Balancer::subscribe`] and waits for draining before stopping tasks.

mod algorithm;
mod config;
mod headers;
mod health;
mod http1;
mod idle;
mod pool;
mod proxy;
mod rules;
mod state;
mod target_group;
mod upstream;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{
    Algorithm, Forward, HealthCheckConfig, ListenerConfig, ListenerLimits, Matcher, Rule, RuleRef,
    TargetGroupConfig, WeightedTargetGroup,
};
pub use rules::path_matches;
pub use state::{CheckResult, HealthStatus, ReasonCode, TargetState};

use rules::{ListenerRules, RuleTable};
use target_group::{Target, TargetGroup};

/// How many health changes a slow subscriber may fall behind before it misses some.
const EVENT_CAPACITY: usize = 1024;

/// Errors of the balancer's API; request-time failures are HTTP responses, not errors.
#[derive(Debug, thiserror::Error)]
pub enum BalancerError {
    /// The listener's address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start a load balancer worker thread")]
    Worker {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A rule or call names a target group the balancer does not have.
    #[error("unknown target group `{name}`")]
    UnknownTargetGroup {
        /// The name used.
        name: String,
    },
    /// Two target groups share a name.
    #[error("target group `{name}` is defined more than once")]
    DuplicateTargetGroup {
        /// The repeated name.
        name: String,
    },
    /// A target group's settings are out of range.
    #[error("target group `{name}`: {problem}")]
    InvalidTargetGroup {
        /// The target group.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Two rules share a priority.
    #[error("rule priority {priority} is used more than once")]
    DuplicatePriority {
        /// The repeated priority.
        priority: u32,
    },
    /// A rule priority is outside 1–50000.
    #[error("rule priority {priority} is outside 1-50000")]
    PriorityOutOfRange {
        /// The priority given.
        priority: u32,
    },
    /// A rule has no path pattern.
    #[error("rule with priority {priority} has no path pattern")]
    NoPathPattern {
        /// The rule's priority.
        priority: u32,
    },
    /// A path pattern the ALB would reject.
    #[error("path pattern `{pattern}`: {problem}")]
    InvalidPathPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A forward action whose weights are all zero (or that has no target group).
    #[error("a forward action needs a target group with a weight above 0")]
    EmptyForward,
    /// A target group weight above 999.
    #[error("weight {weight} of target group `{target_group}` is outside 0-999")]
    WeightOutOfRange {
        /// The target group.
        target_group: String,
        /// The weight given.
        weight: u32,
    },
    /// A health-check matcher that is not `200`, `200-299` or `200,302` style.
    #[error(
        "invalid health-check matcher `{matcher}` (codes 200-499, as `200`, `200-299` or `200,302`)"
    )]
    InvalidMatcher {
        /// The text given.
        matcher: String,
    },
    /// An operation names a rule the listener does not have.
    #[error("the listener has no {rule}")]
    UnknownRule {
        /// The rule asked for.
        rule: RuleRef,
    },
    /// Removing a target group that a rule still forwards to (ELB's `ResourceInUse`).
    #[error("target group `{name}` is still used by the {rule}")]
    TargetGroupInUse {
        /// The target group.
        name: String,
        /// The first rule that forwards to it.
        rule: RuleRef,
    },
    /// Deregistering a target that is not registered.
    #[error("target {target} is not registered in target group `{target_group}`")]
    TargetNotRegistered {
        /// The target group.
        target_group: String,
        /// The target's address.
        target: SocketAddr,
    },
}

/// One target's health, as `DescribeTargetHealth` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    /// The target group's name.
    pub target_group: String,
    /// The target's address.
    pub target: SocketAddr,
    /// `initial`, `healthy`, `unhealthy`, `draining`, ...
    pub state: TargetState,
    /// Why (none when healthy).
    pub reason: Option<ReasonCode>,
    /// AWS's description of the reason.
    pub description: Option<String>,
}

/// A target's state or reason changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetHealthChange {
    /// The target group's name.
    pub target_group: String,
    /// The target's address.
    pub target: SocketAddr,
    /// The state before the change (`unused` for a new registration).
    pub previous: TargetState,
    /// The state after the change.
    pub state: TargetState,
    /// The reason after the change.
    pub reason: Option<ReasonCode>,
    /// AWS's description of the reason.
    pub description: Option<String>,
}

pub(crate) fn health_change(
    target_group: &str,
    target: SocketAddr,
    previous: TargetState,
    status: &HealthStatus,
) -> TargetHealthChange {
    TargetHealthChange {
        target_group: target_group.to_owned(),
        target,
        previous,
        state: status.state(),
        reason: status.reason(),
        description: status.description(),
    }
}

/// State shared by the handle, the listener task and the request path.
#[derive(Debug)]
pub(crate) struct Shared {
    local_addr: SocketAddr,
    /// Read on every request without locking; replaced whole by `set_rules`.
    rules: ArcSwap<RuleTable<Arc<TargetGroup>>>,
    /// What `rules` was compiled from; its lock serialises rule changes (taken before
    /// `groups`).
    source: Mutex<ListenerRules>,
    /// Control plane only: registration, rules, health reports.
    groups: Mutex<BTreeMap<String, Arc<TargetGroup>>>,
    events: broadcast::Sender<TargetHealthChange>,
    stop: CancellationToken,
    /// How many worker threads serve requests (each has its own connection pools).
    worker_count: usize,
    /// One receiver per worker thread, completed when the worker has stopped.
    workers: Mutex<Vec<oneshot::Receiver<()>>>,
    /// Where health checks and draining run, so that the sync API works from any thread.
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn groups(&self) -> MutexGuard<'_, BTreeMap<String, Arc<TargetGroup>>> {
        // The map is replaced entry by entry: a panic elsewhere cannot leave it torn.
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn source(&self) -> MutexGuard<'_, ListenerRules> {
        // Replaced whole after a successful compile: a panic cannot leave it torn.
        self.source.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn group(&self, name: &str) -> Result<Arc<TargetGroup>, BalancerError> {
        self.groups()
            .get(name)
            .cloned()
            .ok_or_else(|| BalancerError::UnknownTargetGroup {
                name: name.to_owned(),
            })
    }

    fn publish(&self, change: TargetHealthChange) {
        tracing::info!(
            target_group = %change.target_group,
            target = %change.target,
            from = %change.previous,
            to = %change.state,
            reason = change.reason.map(|r| r.as_str()),
            "target health changed"
        );
        // No subscriber is fine: target_health() still reports the state.
        let _ = self.events.send(change);
    }
}

/// A running load balancer. Cheap to clone; the listener stops when [`Balancer::shutdown`]
/// is called or the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
    _stop_on_drop: Arc<DropGuard>,
}

impl Balancer {
    /// Binds the listener on `addr` (port 0 picks a free one) and starts serving `config`.
    ///
    /// Requests are served by one worker thread per core, each with its own single-threaded
    /// runtime, `SO_REUSEPORT` listening socket and keep-alive pools (the nginx model:
    /// measured faster than one multi-threaded runtime). Health checks and draining run on
    /// the caller's Tokio runtime, which must outlive the balancer.
    ///
    /// The open-files limit is raised to its hard limit first, and client connections are
    /// bounded so that descriptors are left for the runtime ([`ListenerLimits::from_system`]).
    pub async fn bind(addr: SocketAddr, config: ListenerConfig) -> Result<Self, BalancerError> {
        Self::bind_with_limits(addr, config, ListenerLimits::from_system()).await
    }

    /// [`Balancer::bind`] with explicit worker and connection limits.
    pub async fn bind_with_limits(
        addr: SocketAddr,
        config: ListenerConfig,
        limits: ListenerLimits,
    ) -> Result<Self, BalancerError> {
        let mut groups = BTreeMap::new();
        for group in config.target_groups {
            validate_target_group(&group)?;
            if groups.contains_key(&group.name) {
                return Err(BalancerError::DuplicateTargetGroup { name: group.name });
            }
            groups.insert(group.name.clone(), Arc::new(TargetGroup::new(group)));
        }
        let source = ListenerRules {
            rules: config.rules,
            default: config.default_action,
        };
        let rules = source.compile(|name| resolve(&groups, name))?;
        let listeners = proxy::bind_listeners(addr, limits.workers)
            .map_err(|source| BalancerError::Bind { addr, source })?;
        let local_addr = listeners[0]
            .local_addr()
            .map_err(|source| BalancerError::Bind { addr, source })?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            local_addr,
            rules: ArcSwap::from_pointee(rules),
            source: Mutex::new(source),
            groups: Mutex::new(groups),
            events: broadcast::channel(EVENT_CAPACITY).0,
            stop: stop.clone(),
            worker_count: listeners.len(),
            workers: Mutex::new(Vec::new()),
            runtime: tokio::runtime::Handle::current(),
        });
        let worker_limits = proxy::WorkerLimits {
            idle_timeout: config.idle_timeout,
            // Each worker its share: no state shared between workers per connection.
            max_connections: (limits.max_connections / listeners.len()).max(1),
        };
        let mut finished = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            match proxy::spawn_worker(index, listener, Arc::clone(&shared), worker_limits) {
                Ok(done) => finished.push(done),
                Err(source) => {
                    stop.cancel();
                    return Err(BalancerError::Worker { source });
                }
            }
        }
        *shared
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = finished;
        tracing::info!(%local_addr, "load balancer listening");
        Ok(Self {
            shared,
            _stop_on_drop: Arc::new(stop.drop_guard()),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// `http://<address>`; an unspecified bind address (`0.0.0.0`) shows as `127.0.0.1`.
    pub fn url(&self) -> String {
        let mut addr = self.shared.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{addr}")
    }

    /// Registers `target` in `target_group`: it starts `initial`
    /// (`Elb.RegistrationInProgress`) and health checks begin. Registering a target that is
    /// already registered does nothing; registering a draining one starts a fresh target
    /// while the old registration finishes draining.
    pub fn register(&self, target_group: &str, target: SocketAddr) -> Result<(), BalancerError> {
        let group = self.shared.group(target_group)?;
        let entry = Arc::new(Target::new(
            target,
            self.shared.stop.child_token(),
            self.shared.worker_count,
        ));
        if !group.add(Arc::clone(&entry)) {
            return Ok(());
        }
        let change = health_change(target_group, target, TargetState::Unused, &entry.health());
        self.shared.publish(change);
        self.shared
            .runtime
            .spawn(health::run(Arc::clone(&self.shared), group, entry));
        Ok(())
    }

    /// Deregisters `target`: it turns `draining` (`Target.DeregistrationInProgress`) and gets
    /// no new requests. Deregistration completes once its in-flight requests are done or the
    /// deregistration delay is over, whichever comes first (early completion, spec item 7;
    /// [`Balancer::wait_drained`] resolves then), but the target is listed as `draining`
    /// until the delay ends, then `unused`, and leaves the group (S5.20).
    /// Deregistering a draining target does nothing.
    pub fn deregister(&self, target_group: &str, target: SocketAddr) -> Result<(), BalancerError> {
        let group = self.shared.group(target_group)?;
        let Some(entry) = group.registered(target) else {
            return if group.contains(target) {
                Ok(())
            } else {
                Err(BalancerError::TargetNotRegistered {
                    target_group: target_group.to_owned(),
                    target,
                })
            };
        };
        entry.checks.cancel();
        let change = {
            let mut health = entry.health();
            let previous = health.state();
            health.start_draining();
            entry.publish(health.state());
            health_change(target_group, target, previous, &health)
        };
        self.shared.publish(change);
        self.shared
            .runtime
            .spawn(drain(Arc::clone(&self.shared), group, entry));
        Ok(())
    }

    /// Every target's health, by target group name, then in registration order.
    pub fn target_health(&self) -> Vec<TargetHealth> {
        let groups: Vec<_> = self.shared.groups().values().cloned().collect();
        groups
            .iter()
            .flat_map(|group| {
                group
                    .targets()
                    .iter()
                    .map(|target| {
                        let health = target.health();
                        TargetHealth {
                            target_group: group.config.name.clone(),
                            target: target.addr,
                            state: health.state(),
                            reason: health.reason(),
                            description: health.description(),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Requests routed to a target of `target_group` since it was made (CloudWatch's
    /// `RequestCount`, summed); `None` for an unknown group.
    pub fn request_count(&self, target_group: &str) -> Option<u64> {
        Some(self.shared.group(target_group).ok()?.request_count())
    }

    /// A stream of target state and reason changes (registration, health, draining).
    pub fn subscribe(&self) -> broadcast::Receiver<TargetHealthChange> {
        self.shared.events.subscribe()
    }

    /// Resolves when no target at `target` in `target_group` is registered or finishing
    /// requests: at once if there is none, else once it has been deregistered and has drained
    /// (it may still be listed as `draining` until its delay ends, S5.20).
    pub async fn wait_drained(&self, target_group: &str, target: SocketAddr) {
        let Ok(group) = self.shared.group(target_group) else {
            return;
        };
        loop {
            let removed = group.removed.notified();
            tokio::pin!(removed);
            // Register before checking, so a removal in between still wakes us.
            removed.as_mut().enable();
            if !group.holds(target) {
                return;
            }
            removed.await;
        }
    }

    /// Replaces the listener's rules and default action atomically: requests already routed
    /// keep their target, the next ones use the new rules. On error the old rules stay.
    pub fn set_rules(
        &self,
        rules: Vec<Rule>,
        default_action: Forward,
    ) -> Result<(), BalancerError> {
        self.change_rules(|source| {
            *source = ListenerRules {
                rules,
                default: default_action,
            };
            Ok(())
        })
    }

    /// Changes the weights of the named target groups in one rule's forward action (ELB's
    /// `ModifyRule` on one rule, as a blue/green or canary shift does), adding the groups
    /// the rule does not forward to yet. Every other rule is left as it is; on error nothing
    /// changes.
    pub fn set_rule_weights(
        &self,
        rule: RuleRef,
        weights: &[WeightedTargetGroup],
    ) -> Result<(), BalancerError> {
        self.change_rules(|source| source.set_weights(rule, weights))
    }

    /// Every rule's forward action with its weights: rules by priority, then the default.
    pub fn rule_weights(&self) -> Vec<(RuleRef, Forward)> {
        self.shared
            .source()
            .actions()
            .into_iter()
            .map(|(rule, action)| (rule, action.clone()))
            .collect()
    }

    /// Edits the rules' source, compiles it and publishes the table, or keeps the old rules
    /// if the edit or the compilation fails.
    fn change_rules(
        &self,
        edit: impl FnOnce(&mut ListenerRules) -> Result<(), BalancerError>,
    ) -> Result<(), BalancerError> {
        let mut source = self.shared.source();
        let mut changed = source.clone();
        edit(&mut changed)?;
        let table = {
            let groups = self.shared.groups();
            changed.compile(|name| resolve(&groups, name))?
        };
        self.shared.rules.store(Arc::new(table));
        *source = changed;
        Ok(())
    }

    /// Removes a target group that no rule forwards to any more (the blue side once a
    /// blue/green deployment is over): its health checks stop and its pooled connections
    /// close. A group some rule still names, even at weight 0, is refused as ELB does.
    pub fn remove_target_group(&self, name: &str) -> Result<(), BalancerError> {
        let source = self.shared.source();
        if let Some(rule) = source.user_of(name) {
            return Err(BalancerError::TargetGroupInUse {
                name: name.to_owned(),
                rule,
            });
        }
        let group =
            self.shared
                .groups()
                .remove(name)
                .ok_or_else(|| BalancerError::UnknownTargetGroup {
                    name: name.to_owned(),
                })?;
        drop(source);
        for target in group.targets().iter() {
            target.checks.cancel();
            // Also wakes whoever waits for this target to drain: it is gone with its group.
            group.remove(target);
            target.close_connections();
        }
        Ok(())
    }

    /// Adds a target group that rules may then forward to (e.g. the green side of a
    /// blue/green deployment).
    pub fn add_target_group(&self, config: TargetGroupConfig) -> Result<(), BalancerError> {
        validate_target_group(&config)?;
        let mut groups = self.shared.groups();
        if groups.contains_key(&config.name) {
            return Err(BalancerError::DuplicateTargetGroup { name: config.name });
        }
        groups.insert(config.name.clone(), Arc::new(TargetGroup::new(config)));
        Ok(())
    }

    /// Stops accepting connections and health checks, waits (up to 30 s) for in-flight
    /// requests to finish, and joins the worker threads.
    pub async fn shutdown(self) {
        self.shared.stop.cancel();
        let workers = std::mem::take(
            &mut *self
                .shared
                .workers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for worker in workers {
            // An error only means the worker thread is already gone.
            let _ = worker.await;
        }
    }
}

fn resolve(
    groups: &BTreeMap<String, Arc<TargetGroup>>,
    name: &str,
) -> Result<Arc<TargetGroup>, BalancerError> {
    groups
        .get(name)
        .cloned()
        .ok_or_else(|| BalancerError::UnknownTargetGroup {
            name: name.to_owned(),
        })
}

fn validate_target_group(config: &TargetGroupConfig) -> Result<(), BalancerError> {
    let check = &config.health_check;
    let problem = if config.name.is_empty() {
        Some("the name must not be empty".to_owned())
    } else if !check.path.starts_with('/') {
        Some(format!(
            "health-check path `{}` must start with `/`",
            check.path
        ))
    } else if check.interval.is_zero() {
        Some("the health-check interval must be above 0".to_owned())
    } else if check.timeout >= check.interval {
        // S5.4, with the ALB's wording.
        Some(format!(
            "health check timeout '{:?}' must be smaller than the interval '{:?}'",
            check.timeout, check.interval
        ))
    } else if check.healthy_threshold == 0 || check.unhealthy_threshold == 0 {
        Some("health-check thresholds must be at least 1".to_owned())
    } else if config.request_timeout.is_zero() {
        Some("the request timeout must be above 0".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(BalancerError::InvalidTargetGroup {
            name: config.name.clone(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Lets a deregistered target finish its in-flight requests, then removes it; requests still
/// in flight when the delay is over fail (S5.19). A target that finishes early is drained at
/// once (its task may stop) but stays listed as `draining` until the delay ends (S5.20).
async fn drain(shared: Arc<Shared>, group: Arc<TargetGroup>, target: Arc<Target>) {
    let delay = group.config.deregistration_delay;
    let deadline = tokio::time::Instant::now() + delay;
    let early = tokio::select! {
        () = target.idle() => true,
        () = shared.stop.cancelled() => false,
        () = tokio::time::sleep_until(deadline) => {
            let in_flight = target.in_flight_count();
            if in_flight > 0 {
                tracing::warn!(
                    target_group = %group.config.name,
                    target = %target.addr,
                    in_flight,
                    "deregistration delay over: failing the requests still in flight"
                );
            }
            false
        }
    };
    if early {
        target.close_connections();
        target.mark_drained();
        group.removed.notify_waiters();
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = shared.stop.cancelled() => {}
        }
    }
    let change = {
        let mut health = target.health();
        let previous = health.state();
        health.finish_draining();
        target.publish(health.state());
        health_change(&group.config.name, target.addr, previous, &health)
    };
    group.remove(&target);
    // Closes pooled connections, and with them whatever is still in flight.
    target.close_connections();
    shared.publish(change);
}
