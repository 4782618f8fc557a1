//! The traffic-shifting strategies' decisions (blue/green, canary, linear: ECS-SEMANTICS §3),
//! as a pure function of where a deployment is and what it has observed.
//!
//! [`Shifting::steps`] turns a strategy into the production shares green reaches, each with
//! the bake that follows it (S3.3–S3.6); [`decide`] walks the lifecycle stages (S3.10): it
//! asks for a stage's hook before leaving the stage, starts green, moves test then
//! production traffic by listener weights, bakes, and retires blue — or, on a failed hook or
//! a rollback asked before clean-up, returns all traffic to blue at once (S3.8, S3.13). It
//! owns no clock, no process and no balancer: the executor feeds it the time spent in the
//! stage and carries the decision out.

use std::time::Duration;

use serde::Serialize;

/// Green's share of traffic in tenths of a percent (0–1000): the strategies' percents are
/// multiples of 0.1 (S3.4, S3.6), so shares and weights stay exact integers.
pub type Tenths = u32;

/// All of the traffic.
pub const ALL: Tenths = 1000;

/// A traffic-shifting strategy's parameters (S3.3–S3.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shifting {
    /// All production traffic at once, then `bake_time`.
    BlueGreen { bake_time: Duration },
    /// `percent` first, `canary_bake`, then the rest and `bake_time` (S3.6).
    Canary {
        percent: f64,
        canary_bake: Duration,
        bake_time: Duration,
    },
    /// `step_percent` more at each step with `step_bake` between steps; no step bake after
    /// 100%, `bake_time` instead (S3.4, S3.5).
    Linear {
        step_percent: f64,
        step_bake: Duration,
        bake_time: Duration,
    },
}

/// One traffic-shifting deployment as the stack file asks for it when `berth deploy` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftPlan {
    pub strategy: Shifting,
    /// `sh -c` commands by ECS stage name (`POST_TEST_TRAFFIC_SHIFT`): exit status 0
    /// approves the stage, anything else fails it.
    pub hooks: std::collections::BTreeMap<String, String>,
    /// How long a hook may run before it fails its stage (S3.12, action ROLLBACK).
    pub hook_timeout: Duration,
    /// The test listener's port; `None`: a free one.
    pub test_listener_port: Option<u16>,
}

/// One production shift: green's share once it is done and how long to bake after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub green: Tenths,
    pub bake: Duration,
}

impl Shifting {
    /// The production shifts in order; the last one reaches [`ALL`] and is followed by the
    /// deployment's bake time.
    pub fn steps(&self) -> Vec<Step> {
        let (first, each, step_bake, bake_time) = match *self {
            Self::BlueGreen { bake_time } => (ALL, ALL, Duration::ZERO, bake_time),
            Self::Canary {
                percent,
                canary_bake,
                bake_time,
            } => (tenths(percent), ALL, canary_bake, bake_time),
            Self::Linear {
                step_percent,
                step_bake,
                bake_time,
            } => {
                let step = tenths(step_percent);
                (step, step, step_bake, bake_time)
            }
        };
        let mut steps = Vec::new();
        let mut green = first;
        while green < ALL {
            steps.push(Step {
                green,
                bake: step_bake,
            });
            green += each;
        }
        steps.push(Step {
            green: ALL,
            bake: bake_time,
        });
        steps
    }
}

/// A percent (multiple of 0.1, within 0.1–100 once the stack file is read) in tenths; at
/// least one tenth so that a step always moves traffic.
fn tenths(percent: f64) -> Tenths {
    // Checked range: the cast cannot truncate.
    ((percent * 10.0).round().clamp(1.0, f64::from(ALL))) as Tenths
}

/// The forward weights `(blue, green)` (each 0–999, S5.29) that give green `share`.
pub fn weights(share: Tenths) -> (u32, u32) {
    match share {
        0 => (1, 0),
        s if s >= ALL => (0, 1),
        s => (ALL - s, s),
    }
}

/// A lifecycle stage (S3.10); production shifts and step bakes carry the index of their step
/// in [`Shifting::steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "stage", content = "step", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    PreScaleUp,
    ScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift(usize),
    ProductionTrafficShift(usize),
    /// The bake between two production shifts (canary, linear).
    StepBake(usize),
    PostProductionTrafficShift,
    BakeTime,
    CleanUp,
}

impl Stage {
    /// The stage's name in ECS's `lifecycleStage` (S3.10); a step bake reports as
    /// `BAKE_TIME`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PreScaleUp => "PRE_SCALE_UP",
            Self::ScaleUp => "SCALE_UP",
            Self::PostScaleUp => "POST_SCALE_UP",
            Self::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Self::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            Self::PreProductionTrafficShift(_) => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            Self::ProductionTrafficShift(_) => "PRODUCTION_TRAFFIC_SHIFT",
            Self::StepBake(_) | Self::BakeTime => "BAKE_TIME",
            Self::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
            Self::CleanUp => "CLEAN_UP",
        }
    }

    /// Whether a lifecycle hook may attach to the stage (S3.11).
    pub fn takes_hooks(self) -> bool {
        !matches!(
            self,
            Self::ScaleUp | Self::StepBake(_) | Self::BakeTime | Self::CleanUp
        )
    }
}

/// The current stage's hook, as the executor last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// No hook is configured for the stage.
    None,
    /// Configured and not started yet.
    Pending,
    /// Started, no verdict yet.
    Running,
    /// Approved the stage (S3.13 `SUCCEEDED`).
    Succeeded,
    /// Failed the stage (a non-zero exit, a timeout): the deployment rolls back (S3.13).
    Failed,
}

/// What [`decide`] sees of a deployment.
#[derive(Debug, Clone, Copy)]
pub struct ShiftView<'a> {
    pub steps: &'a [Step],
    pub stage: Stage,
    pub hook: Hook,
    /// Every green task the deployment wants is running and healthy in its target group.
    pub green_ready: bool,
    /// Time spent in the current stage.
    pub elapsed: Duration,
    /// `berth rollback` (StopServiceDeployment with ROLLBACK) was asked.
    pub rollback_requested: bool,
}

/// Something to do on entering the next stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Start green's tasks, registered in the alternate target group.
    StartGreen,
    /// Set the test listener's weights so green has `green` of test traffic.
    ShiftTest { green: Tenths },
    /// Set the production rule's weights so green has `green` of production traffic.
    ShiftProduction { green: Tenths },
    /// Deregister, drain and stop blue; green becomes the primary target group.
    RetireBlue,
}

/// Why a deployment rolls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackCause {
    HookFailed,
    Requested,
}

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Run the current stage's hook.
    RunHook,
    /// Nothing to do until something is observed, or for at most `at_most`.
    Wait { at_most: Option<Duration> },
    /// Carry out `effect` (if any) and enter `stage`.
    Advance {
        stage: Stage,
        effect: Option<Effect>,
    },
    /// Return all production and test traffic to blue at once, then stop green.
    RollBack { cause: RollbackCause },
    /// Clean-up has begun: blue is being retired, the deployment completes once it is gone.
    Finished,
}

/// Where a run is, for watchers (status, tests): the stage, its hook, green's share of
/// production traffic, and the test listener once it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftProgress {
    pub stage: Stage,
    pub hook: Hook,
    pub production_green: Tenths,
    /// Where test traffic reaches green before production traffic moves (S3.8 step 3).
    pub test_listener: Option<std::net::SocketAddr>,
}

impl ShiftProgress {
    /// A run that has not started: blue has everything.
    pub fn start() -> Self {
        Self {
            stage: Stage::PreScaleUp,
            hook: Hook::None,
            production_green: 0,
            test_listener: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftOutcome {
    /// Clean-up began: green has all production traffic and blue can be retired.
    Completed,
    /// All traffic is back on blue; green can be stopped.
    RolledBack(RollbackCause),
}

/// The next decision of a traffic-shifting deployment.
pub fn decide(view: &ShiftView<'_>) -> Decision {
    // Once blue is being retired there is nothing left to return to (S3.8 step 6).
    if view.stage == Stage::CleanUp {
        return Decision::Finished;
    }
    if view.rollback_requested {
        return Decision::RollBack {
            cause: RollbackCause::Requested,
        };
    }
    if view.stage.takes_hooks() {
        match view.hook {
            Hook::Pending => return Decision::RunHook,
            Hook::Running => return Decision::Wait { at_most: None },
            Hook::Failed => {
                return Decision::RollBack {
                    cause: RollbackCause::HookFailed,
                };
            }
            Hook::None | Hook::Succeeded => {}
        }
    }
    let advance = |stage, effect| Decision::Advance { stage, effect };
    let bake = |bake: Duration, then| match bake.checked_sub(view.elapsed) {
        Some(left) if !left.is_zero() => Decision::Wait {
            at_most: Some(left),
        },
        _ => then,
    };
    let last = view.steps.len().saturating_sub(1);
    match view.stage {
        Stage::PreScaleUp => advance(Stage::ScaleUp, Some(Effect::StartGreen)),
        Stage::ScaleUp if view.green_ready => advance(Stage::PostScaleUp, None),
        Stage::ScaleUp => Decision::Wait { at_most: None },
        Stage::PostScaleUp => advance(
            Stage::TestTrafficShift,
            Some(Effect::ShiftTest { green: ALL }),
        ),
        Stage::TestTrafficShift => advance(Stage::PostTestTrafficShift, None),
        Stage::PostTestTrafficShift => advance(Stage::PreProductionTrafficShift(0), None),
        Stage::PreProductionTrafficShift(step) => advance(
            Stage::ProductionTrafficShift(step),
            Some(Effect::ShiftProduction {
                green: view.steps.get(step).map_or(ALL, |s| s.green),
            }),
        ),
        Stage::ProductionTrafficShift(step) if step >= last => {
            advance(Stage::PostProductionTrafficShift, None)
        }
        Stage::ProductionTrafficShift(step) => advance(Stage::StepBake(step), None),
        Stage::StepBake(step) => bake(
            view.steps[step].bake,
            advance(Stage::PreProductionTrafficShift(step + 1), None),
        ),
        Stage::PostProductionTrafficShift => advance(Stage::BakeTime, None),
        Stage::BakeTime => bake(
            view.steps.last().map_or(Duration::ZERO, |s| s.bake),
            advance(Stage::CleanUp, Some(Effect::RetireBlue)),
        ),
        Stage::CleanUp => Decision::Finished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn shares(steps: &[Step]) -> Vec<(Tenths, u64)> {
        steps
            .iter()
            .map(|s| (s.green, s.bake.as_secs() / 60))
            .collect()
    }

    #[test]
    fn steps_per_strategy() {
        let bake_time = 5 * MIN;
        let canary = |percent| Shifting::Canary {
            percent,
            canary_bake: 10 * MIN,
            bake_time,
        };
        let linear = |step_percent| Shifting::Linear {
            step_percent,
            step_bake: 6 * MIN,
            bake_time,
        };
        // (strategy, (green share in tenths, bake in minutes) per production shift)
        let cases: Vec<(Shifting, Vec<(Tenths, u64)>)> = vec![
            // S3.8: all at once, then the bake time.
            (Shifting::BlueGreen { bake_time }, vec![(1000, 5)]),
            // S3.6: the canary percent, its bake, then the rest at once.
            (canary(5.0), vec![(50, 10), (1000, 5)]),
            (canary(0.1), vec![(1, 10), (1000, 5)]),
            (canary(33.3), vec![(333, 10), (1000, 5)]),
            (canary(100.0), vec![(1000, 5)]),
            // S3.5: 100/step whole → 100/step − 1 step bakes, else floor(100/step).
            (linear(50.0), vec![(500, 6), (1000, 5)]),
            (linear(30.0), vec![(300, 6), (600, 6), (900, 6), (1000, 5)]),
            (linear(25.0), vec![(250, 6), (500, 6), (750, 6), (1000, 5)]),
            (linear(100.0), vec![(1000, 5)]),
        ];
        for (strategy, expected) in cases {
            assert_eq!(shares(&strategy.steps()), expected, "{strategy:?}");
        }
        // The default linear step (10%, S3.4): nine step bakes, ten shifts.
        let ten = linear(10.0).steps();
        assert_eq!(ten.len(), 10);
        assert_eq!(ten.iter().filter(|s| s.bake == 6 * MIN).count(), 9);
        // 3.3%: floor(100 / 3.3) = 30 step bakes.
        let small = linear(3.3).steps();
        assert_eq!(small.len() - 1, 30);
        assert_eq!(small[29].green, 990);
    }

    #[test]
    fn weights_give_green_its_share_within_the_albs_range() {
        let cases = [
            (0, (1, 0)),
            (1, (999, 1)),
            (50, (950, 50)),
            (500, (500, 500)),
            (999, (1, 999)),
            (1000, (0, 1)),
        ];
        for (share, expected) in cases {
            let (blue, green) = weights(share);
            assert_eq!((blue, green), expected, "share {share}");
            assert!(blue <= 999 && green <= 999 && blue + green > 0);
        }
    }

    fn view(steps: &[Step], stage: Stage, hook: Hook) -> ShiftView<'_> {
        ShiftView {
            steps,
            stage,
            hook,
            green_ready: true,
            elapsed: Duration::ZERO,
            rollback_requested: false,
        }
    }

    #[test]
    fn decisions_at_each_stage() {
        let steps = Shifting::Canary {
            percent: 5.0,
            canary_bake: 10 * MIN,
            bake_time: 5 * MIN,
        }
        .steps();
        let adv = |stage, effect| Decision::Advance { stage, effect };
        let wait = |d: Option<Duration>| Decision::Wait { at_most: d };
        let back = |cause| Decision::RollBack { cause };
        use Effect::*;
        use Hook::{Failed, None as NoHook, Pending, Running, Succeeded};
        use Stage::*;
        // (stage, hook, green ready, elapsed, rollback asked, decision)
        let cases = [
            (
                PreScaleUp,
                NoHook,
                false,
                0,
                false,
                adv(ScaleUp, Some(StartGreen)),
            ),
            (PreScaleUp, Pending, false, 0, false, Decision::RunHook),
            (PreScaleUp, Running, false, 0, false, wait(None)),
            (
                PreScaleUp,
                Succeeded,
                false,
                0,
                false,
                adv(ScaleUp, Some(StartGreen)),
            ),
            (
                PreScaleUp,
                Failed,
                false,
                0,
                false,
                back(RollbackCause::HookFailed),
            ),
            // S3.10 step 3: no traffic until green is up; SCALE_UP takes no hook (S3.11).
            (ScaleUp, Pending, false, 0, false, wait(None)),
            (ScaleUp, Pending, true, 0, false, adv(PostScaleUp, None)),
            // S3.8 step 3: test traffic before production traffic.
            (
                PostScaleUp,
                NoHook,
                true,
                0,
                false,
                adv(TestTrafficShift, Some(ShiftTest { green: 1000 })),
            ),
            (
                TestTrafficShift,
                Succeeded,
                true,
                0,
                false,
                adv(PostTestTrafficShift, None),
            ),
            (
                TestTrafficShift,
                Failed,
                true,
                0,
                false,
                back(RollbackCause::HookFailed),
            ),
            (
                PostTestTrafficShift,
                NoHook,
                true,
                0,
                false,
                adv(PreProductionTrafficShift(0), None),
            ),
            // S3.10: the production hooks run at every step.
            (
                PreProductionTrafficShift(0),
                Pending,
                true,
                0,
                false,
                Decision::RunHook,
            ),
            (
                PreProductionTrafficShift(0),
                NoHook,
                true,
                0,
                false,
                adv(
                    ProductionTrafficShift(0),
                    Some(ShiftProduction { green: 50 }),
                ),
            ),
            (
                ProductionTrafficShift(0),
                Pending,
                true,
                0,
                false,
                Decision::RunHook,
            ),
            (
                ProductionTrafficShift(0),
                NoHook,
                true,
                0,
                false,
                adv(StepBake(0), None),
            ),
            (StepBake(0), NoHook, true, 0, false, wait(Some(10 * MIN))),
            (StepBake(0), NoHook, true, 240, false, wait(Some(6 * MIN))),
            (
                StepBake(0),
                NoHook,
                true,
                600,
                false,
                adv(PreProductionTrafficShift(1), None),
            ),
            (
                PreProductionTrafficShift(1),
                NoHook,
                true,
                0,
                false,
                adv(
                    ProductionTrafficShift(1),
                    Some(ShiftProduction { green: 1000 }),
                ),
            ),
            (
                ProductionTrafficShift(1),
                NoHook,
                true,
                0,
                false,
                adv(PostProductionTrafficShift, None),
            ),
            (
                PostProductionTrafficShift,
                Failed,
                true,
                0,
                false,
                back(RollbackCause::HookFailed),
            ),
            (
                PostProductionTrafficShift,
                NoHook,
                true,
                0,
                false,
                adv(BakeTime, None),
            ),
            (
                BakeTime,
                NoHook,
                true,
                299,
                false,
                wait(Some(Duration::from_secs(1))),
            ),
            (
                BakeTime,
                NoHook,
                true,
                300,
                false,
                adv(CleanUp, Some(RetireBlue)),
            ),
            // A rollback asked at any stage before clean-up returns traffic to blue, even
            // while a hook runs; after it, blue is gone and there is nothing to return to.
            (
                ScaleUp,
                NoHook,
                false,
                0,
                true,
                back(RollbackCause::Requested),
            ),
            (
                TestTrafficShift,
                Running,
                true,
                0,
                true,
                back(RollbackCause::Requested),
            ),
            (
                StepBake(0),
                NoHook,
                true,
                60,
                true,
                back(RollbackCause::Requested),
            ),
            (
                BakeTime,
                NoHook,
                true,
                60,
                true,
                back(RollbackCause::Requested),
            ),
            (CleanUp, NoHook, true, 0, true, Decision::Finished),
            (CleanUp, Failed, true, 0, false, Decision::Finished),
        ];
        for (stage, hook, ready, secs, rollback, expected) in cases {
            let v = ShiftView {
                green_ready: ready,
                elapsed: Duration::from_secs(secs),
                rollback_requested: rollback,
                ..view(&steps, stage, hook)
            };
            assert_eq!(
                decide(&v),
                expected,
                "{stage:?} hook {hook:?} ready {ready} after {secs}s rollback {rollback}"
            );
        }
    }

    /// Runs a deployment with no hooks from start to clean-up, baking fully at each bake, and
    /// returns the effects in order with the bake waited after each production shift.
    fn walk(strategy: Shifting) -> Vec<(Effect, Duration)> {
        let steps = strategy.steps();
        let mut stage = Stage::PreScaleUp;
        let mut elapsed = Duration::ZERO;
        let mut effects: Vec<(Effect, Duration)> = Vec::new();
        for _ in 0..1000 {
            match decide(&ShiftView {
                elapsed,
                ..view(&steps, stage, Hook::None)
            }) {
                Decision::Advance {
                    stage: next,
                    effect,
                } => {
                    effects.extend(effect.map(|e| (e, Duration::ZERO)));
                    stage = next;
                    elapsed = Duration::ZERO;
                }
                Decision::Wait { at_most: Some(d) } => {
                    elapsed += d;
                    if let Some(last) = effects.last_mut() {
                        last.1 += d;
                    }
                }
                Decision::Finished => return effects,
                other => panic!("{other:?} at {stage:?}"),
            }
        }
        panic!("no end");
    }

    #[test]
    fn whole_deployments_shift_and_bake_in_order() {
        use Effect::*;
        let blue_green = walk(Shifting::BlueGreen { bake_time: 5 * MIN });
        assert_eq!(
            blue_green,
            vec![
                (StartGreen, Duration::ZERO),
                (ShiftTest { green: 1000 }, Duration::ZERO),
                (ShiftProduction { green: 1000 }, 5 * MIN),
                (RetireBlue, Duration::ZERO),
            ]
        );
        let linear = walk(Shifting::Linear {
            step_percent: 40.0,
            step_bake: MIN,
            bake_time: 3 * MIN,
        });
        let production: Vec<_> = linear
            .iter()
            .filter_map(|(e, bake)| match e {
                ShiftProduction { green } => Some((*green, *bake)),
                _ => None,
            })
            .collect();
        assert_eq!(production, vec![(400, MIN), (800, MIN), (1000, 3 * MIN)]);
        assert_eq!(linear.last(), Some(&(RetireBlue, Duration::ZERO)));
    }
}
