//! Carries out a traffic-shifting deployment's decisions ([`crate::service::shift`]) on the
//! embedded balancer: production weights on one listener rule, lifecycle hooks as commands,
//! bakes as timers, and a rollback that returns all traffic to blue at once (S3.8, S3.13).
//!
//! Starting green's tasks and retiring blue's are the caller's (the scheduler's): the run
//! waits on `green_ready` in `SCALE_UP` and ends when clean-up begins. The test listener, when
//! there is one, is a second balancer on its own port whose target groups mirror blue's and
//! green's ([`BalancerRouter`] registers each target in both): `TEST_TRAFFIC_SHIFT` moves its
//! default rule to green (S3.8 step 3).
//!
//! [`StackShifter`] is the scheduler's [`TrafficShifter`]: per run it makes sure green's
//! target group exists, binds the test listener, runs the stages and closes the listener.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::router::BalancerRouter;
use crate::balancer::{
    Balancer, BalancerError, Forward, ListenerConfig, ListenerLimits, RuleRef, TargetGroupConfig,
    WeightedTargetGroup,
};
use crate::service::shift::{
    Decision, Effect, Hook, ShiftOutcome, ShiftProgress, ShiftView, Shifting, Stage, Tenths,
    decide, weights,
};
use crate::service::{BoxFuture, ShiftRun, TrafficShifter};

/// What to shift: the production rules (every rule forwarding to the service), blue's and
/// green's target groups, the strategy, the hook commands by ECS stage name
/// (`PRE_SCALE_UP`, `PRODUCTION_TRAFFIC_SHIFT`...) and the test listener, if any.
#[derive(Debug, Clone)]
pub struct TrafficShift {
    pub rules: Vec<RuleRef>,
    pub blue: String,
    pub green: String,
    pub strategy: Shifting,
    /// `sh -c` commands: exit status 0 approves the stage, anything else fails it.
    pub hooks: BTreeMap<String, String>,
    /// How long a hook may run; past it the hook fails its stage and the deployment rolls
    /// back (S3.12: `timeoutConfiguration`, default 1440 minutes, action ROLLBACK).
    pub hook_timeout: Duration,
    /// A balancer whose default rule forwards to blue until `TEST_TRAFFIC_SHIFT`.
    pub test_listener: Option<Balancer>,
}

/// ECS's default hook timeout (S3.12).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(1440 * 60);

impl TrafficShift {
    fn hook_for(&self, stage: Stage) -> Hook {
        if stage.takes_hooks() && self.hooks.contains_key(stage.name()) {
            Hook::Pending
        } else {
            Hook::None
        }
    }

    fn weighted(&self, green: Tenths) -> [WeightedTargetGroup; 2] {
        let (blue_weight, green_weight) = weights(green);
        [
            WeightedTargetGroup {
                name: self.blue.clone(),
                weight: blue_weight,
            },
            WeightedTargetGroup {
                name: self.green.clone(),
                weight: green_weight,
            },
        ]
    }

    fn set_production(&self, balancer: &Balancer, green: Tenths) -> Result<(), BalancerError> {
        for rule in &self.rules {
            balancer.set_rule_weights(*rule, &self.weighted(green))?;
        }
        Ok(())
    }

    fn set_test(&self, green: Tenths) -> Result<(), BalancerError> {
        match &self.test_listener {
            Some(test) => test.set_rule_weights(RuleRef::Default, &self.weighted(green)),
            None => Ok(()),
        }
    }

    /// Runs the deployment's stages until clean-up or a rollback; `rollback` is
    /// `berth rollback` during the deployment. Progress is published on `progress`.
    pub async fn run(
        &self,
        balancer: &Balancer,
        green_ready: impl Future<Output = ()>,
        rollback: &CancellationToken,
        progress: &watch::Sender<ShiftProgress>,
    ) -> Result<ShiftOutcome, BalancerError> {
        let steps = self.strategy.steps();
        tokio::pin!(green_ready);
        let mut green_is_ready = false;
        let mut stage = Stage::PreScaleUp;
        let mut hook = self.hook_for(stage);
        let mut entered = Instant::now();
        let mut production_green = 0;
        let test_listener = self.test_listener.as_ref().map(Balancer::local_addr);
        let mut test_green = 0;
        loop {
            progress.send_replace(ShiftProgress {
                stage,
                hook,
                production_green,
                test_listener,
            });
            let view = ShiftView {
                steps: &steps,
                stage,
                hook,
                green_ready: green_is_ready,
                elapsed: entered.elapsed(),
                rollback_requested: rollback.is_cancelled(),
            };
            match decide(&view) {
                Decision::RunHook => {
                    progress.send_replace(ShiftProgress {
                        stage,
                        hook: Hook::Running,
                        production_green,
                        test_listener,
                    });
                    let command = &self.hooks[stage.name()];
                    tokio::select! {
                        verdict = tokio::time::timeout(
                            self.hook_timeout,
                            run_hook(command, stage, production_green),
                        ) => hook = hook_verdict(stage, verdict.ok()),
                        // The hook is abandoned (its process killed): the next decision is
                        // the rollback.
                        () = rollback.cancelled() => hook = Hook::Running,
                    }
                }
                Decision::Wait { at_most } => {
                    let sleep = async {
                        match at_most {
                            Some(duration) => tokio::time::sleep(duration).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = sleep => {}
                        () = rollback.cancelled() => {}
                        () = &mut green_ready, if !green_is_ready => green_is_ready = true,
                    }
                }
                Decision::Advance {
                    stage: next,
                    effect,
                } => {
                    match effect {
                        Some(Effect::ShiftProduction { green }) => {
                            self.set_production(balancer, green)?;
                            production_green = green;
                        }
                        Some(Effect::ShiftTest { green }) => {
                            self.set_test(green)?;
                            test_green = green;
                        }
                        // StartGreen and RetireBlue are the caller's.
                        Some(Effect::StartGreen | Effect::RetireBlue) | None => {}
                    }
                    stage = next;
                    hook = self.hook_for(stage);
                    entered = Instant::now();
                }
                Decision::RollBack { cause } => {
                    // All at once, whatever the step (S3.8: back to the primary group).
                    if production_green > 0 {
                        self.set_production(balancer, 0)?;
                    }
                    if test_green > 0 {
                        self.set_test(0)?;
                    }
                    progress.send_replace(ShiftProgress {
                        stage,
                        hook,
                        production_green: 0,
                        test_listener,
                    });
                    return Ok(ShiftOutcome::RolledBack(cause));
                }
                Decision::Finished => return Ok(ShiftOutcome::Completed),
            }
        }
    }
}

/// The hook's state once it ended: `approved` is `None` when it timed out.
fn hook_verdict(stage: Stage, approved: Option<bool>) -> Hook {
    if approved == Some(true) {
        return Hook::Succeeded;
    }
    tracing::warn!(
        stage = stage.name(),
        timed_out = approved.is_none(),
        "the lifecycle hook failed its stage"
    );
    Hook::Failed
}

/// Runs one hook command; `true` when it exits 0. The stage and green's production share
/// are in its environment (the payload's `productionTrafficWeights`, S3.15, in short).
async fn run_hook(command: &str, stage: Stage, production_green: Tenths) -> bool {
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("BERTH_LIFECYCLE_STAGE", stage.name())
        .env(
            "BERTH_GREEN_PRODUCTION_PERCENT",
            format!("{:.1}", f64::from(production_green) / 10.0),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(status) => status.success(),
        Err(error) => {
            tracing::warn!(%error, stage = stage.name(), "cannot run the lifecycle hook");
            false
        }
    }
}

/// The embedded runtime's [`TrafficShifter`] for one service.
pub struct StackShifter {
    pub balancer: Balancer,
    pub router: Arc<BalancerRouter>,
    /// Every listener rule that forwards to the service (its routes, the default rule).
    pub rules: Vec<RuleRef>,
    /// Blue's target group settings; green's are the same under its own name.
    pub target_group: TargetGroupConfig,
}

impl StackShifter {
    fn group(&self, name: &str) -> TargetGroupConfig {
        TargetGroupConfig {
            name: name.to_owned(),
            ..self.target_group.clone()
        }
    }

    /// A test listener on `port` (0: a free one) forwarding to blue, with blue's current
    /// targets; green's arrive through the router as they register.
    async fn test_listener(
        &self,
        port: Option<u16>,
        blue: &str,
        green: &str,
    ) -> Result<Balancer, String> {
        let config = ListenerConfig {
            rules: Vec::new(),
            default_action: Forward::to(blue),
            target_groups: vec![self.group(blue), self.group(green)],
            idle_timeout: self.target_group.request_timeout,
        };
        let port = port.unwrap_or(0);
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let limits = ListenerLimits {
            workers: 1,
            max_connections: 256,
        };
        let test = Balancer::bind_with_limits(addr, config, limits)
            .await
            .map_err(|e| format!("cannot open the test listener on {addr}: {e}"))?;
        self.router.add_mirror(test.clone());
        for target in self.balancer.target_health() {
            if target.target_group == blue && target.state != crate::balancer::TargetState::Draining
            {
                let _ = test.register(blue, target.target);
            }
        }
        Ok(test)
    }
}

impl TrafficShifter for StackShifter {
    fn shift(&self, run: ShiftRun) -> BoxFuture<'static, Result<ShiftOutcome, String>> {
        let balancer = self.balancer.clone();
        let router = Arc::clone(&self.router);
        let green_group = self.group(&run.green);
        let rules = self.rules.clone();
        let this = StackShifter {
            balancer: self.balancer.clone(),
            router: Arc::clone(&self.router),
            rules: self.rules.clone(),
            target_group: self.target_group.clone(),
        };
        Box::pin(async move {
            // Green's group is made on the first traffic-shifting deployment; later ones find it.
            match balancer.add_target_group(green_group) {
                Ok(()) | Err(BalancerError::DuplicateTargetGroup { .. }) => {}
                Err(error) => return Err(error.to_string()),
            }
            let test = this
                .test_listener(run.plan.test_listener_port, &run.blue, &run.green)
                .await?;
            let shift = TrafficShift {
                rules,
                blue: run.blue.clone(),
                green: run.green.clone(),
                strategy: run.plan.strategy,
                hooks: run.plan.hooks.clone(),
                hook_timeout: run.plan.hook_timeout,
                test_listener: Some(test.clone()),
            };
            let outcome = shift
                .run(&balancer, run.green_ready, &run.rollback, &run.progress)
                .await
                .map_err(|e| e.to_string());
            router.remove_mirror(&test);
            test.shutdown().await;
            outcome
        })
    }
}
