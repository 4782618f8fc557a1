//! Carries out a traffic-shifting deployment's decisions ([`crate::service::shift`]) on the
//! embedded balancer: production weights on one listener rule, lifecycle hooks as commands,
//! bakes as timers, and a rollback that returns all traffic to blue at once (S3.8, S3.13).
//!
//! Starting green's tasks and retiring blue's are the caller's (the scheduler's): the run
//! waits on `green_ready` in `SCALE_UP` and ends when clean-up begins. There is no test
//! listener yet, so `TEST_TRAFFIC_SHIFT` moves nothing (S3.8 step 3: only "if a test rule
//! exists").

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::balancer::{Balancer, BalancerError, RuleRef, WeightedTargetGroup};
use crate::service::shift::{
    Decision, Effect, Hook, RollbackCause, ShiftView, Shifting, Stage, Tenths, decide, weights,
};

/// What to shift: the production rule, blue's and green's target groups, the strategy and
/// the hook commands by ECS stage name (`PRE_SCALE_UP`, `PRODUCTION_TRAFFIC_SHIFT`...).
#[derive(Debug, Clone)]
pub struct TrafficShift {
    pub rule: RuleRef,
    pub blue: String,
    pub green: String,
    pub strategy: Shifting,
    /// `sh -c` commands: exit status 0 approves the stage, anything else fails it.
    pub hooks: BTreeMap<String, String>,
    /// How long a hook may run; past it the hook fails its stage and the deployment rolls
    /// back (S3.12: `timeoutConfiguration`, default 1440 minutes, action ROLLBACK).
    pub hook_timeout: Duration,
}

/// ECS's default hook timeout (S3.12).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(1440 * 60);

/// Where a run is, for watchers (status, tests): the stage, its hook, green's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftProgress {
    pub stage: Stage,
    pub hook: Hook,
    pub production_green: Tenths,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftOutcome {
    /// Clean-up began: green has all production traffic and blue can be retired.
    Completed,
    /// All traffic is back on blue; green can be stopped.
    RolledBack(RollbackCause),
}

impl TrafficShift {
    fn hook_for(&self, stage: Stage) -> Hook {
        if stage.takes_hooks() && self.hooks.contains_key(stage.name()) {
            Hook::Pending
        } else {
            Hook::None
        }
    }

    fn set_production(&self, balancer: &Balancer, green: Tenths) -> Result<(), BalancerError> {
        let (blue_weight, green_weight) = weights(green);
        balancer.set_rule_weights(
            self.rule,
            &[
                WeightedTargetGroup {
                    name: self.blue.clone(),
                    weight: blue_weight,
                },
                WeightedTargetGroup {
                    name: self.green.clone(),
                    weight: green_weight,
                },
            ],
        )
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
        loop {
            progress.send_replace(ShiftProgress {
                stage,
                hook,
                production_green,
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
                    if let Some(Effect::ShiftProduction { green }) = effect {
                        self.set_production(balancer, green)?;
                        production_green = green;
                    }
                    // StartGreen and RetireBlue are the caller's; ShiftTest has no listener.
                    stage = next;
                    hook = self.hook_for(stage);
                    entered = Instant::now();
                }
                Decision::RollBack { cause } => {
                    // All at once, whatever the step (S3.8: back to the primary group).
                    if production_green > 0 {
                        self.set_production(balancer, 0)?;
                    }
                    progress.send_replace(ShiftProgress {
                        stage,
                        hook,
                        production_green: 0,
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
