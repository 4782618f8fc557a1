//! Target-tracking autoscaling's decision, as a pure function of what it observes
//! (ECS-SEMANTICS §6).
//!
//! `decide(policy, view) -> Scaling` owns no clock: the caller gives it the metric's
//! datapoints (oldest first, one per metric period, `None` where there was no data) and the
//! time since the last scale-out and scale-in. The two managed alarms are modelled by their
//! datapoint counts (S6.7): scale out once the last 3 datapoints are all above the target,
//! scale in once the last 15 are all below 90% of it.
//!
//! The new capacity is `ceil(current × metric / target)` both ways (S6.6's proportional
//! model). For scale-in that is S6.5's rounding rule (the number of tasks removed is rounded
//! down) and keeps the metric at or below the target afterwards ("not if removing the minimum
//! unit would likely push the metric above target"); S6.6's `floor` would push it above.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Datapoints above target that scale out (the high alarm: 3 periods, S6.7).
pub const HIGH_DATAPOINTS: usize = 3;
/// Datapoints below the low threshold that scale in (the low alarm: 15 periods, S6.7).
pub const LOW_DATAPOINTS: usize = 15;
/// The low alarm's threshold as a share of the target ("usually more than 10% lower", S6.5).
const LOW_SHARE: f64 = 0.9;

/// One target-tracking policy on a scalable target (S6.1, S6.4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingPolicy {
    pub min: u32,
    pub max: u32,
    /// The metric's target value (percent, or requests per target per minute).
    pub target: f64,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

/// What the scaler sees of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingView<'a> {
    /// RUNNING tasks: the starting point of a new capacity (S6.6).
    pub running: u32,
    /// The service's desired count now.
    pub desired: u32,
    /// Metric datapoints, oldest first; `None` for a period without data.
    pub datapoints: &'a [Option<f64>],
    /// A deployment is in progress: scale-in is off (S6.10).
    pub deploying: bool,
    /// Time since the last scale-out, and the capacity it started from.
    pub last_scale_out: Option<(Duration, u32)>,
    /// Time since the last scale-in, if no scale-out came after it (a scale-out cancels the
    /// scale-in cooldown, S6.4).
    pub last_scale_in: Option<Duration>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Scaling {
    /// Set the desired count to `to` (up); `metric` is the datapoint that decided it.
    ScaleOut { to: u32, metric: f64 },
    /// Set the desired count to `to` (down).
    ScaleIn { to: u32, metric: f64 },
    /// Leave it.
    Hold,
}

/// The decision for `view` under `policy`.
pub fn decide(policy: &ScalingPolicy, view: &ScalingView<'_>) -> Scaling {
    if let Some(scaling) = scale_out(policy, view) {
        return scaling;
    }
    scale_in(policy, view).unwrap_or(Scaling::Hold)
}

/// The last `n` datapoints, if there are `n` and each has data (insufficient data never
/// scales, S6.5).
fn last(datapoints: &[Option<f64>], n: usize) -> Option<Vec<f64>> {
    let start = datapoints.len().checked_sub(n)?;
    datapoints[start..].iter().copied().collect()
}

/// `ceil(current × metric / target)`, saturating.
fn proportional(current: u32, metric: f64, target: f64) -> u32 {
    let wanted = (f64::from(current) * metric / target).ceil();
    if wanted >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        wanted.max(0.0) as u32
    }
}

/// The capacity a scale-out now starts from. Within the cooldown, the capacity the last
/// scale-out added counts toward this one (S6.4): it is computed from where that one started
/// and acts only if it asks for more; after it, from the running count (S6.6).
pub fn scale_out_base(policy: &ScalingPolicy, view: &ScalingView<'_>) -> u32 {
    match view.last_scale_out {
        Some((since, from)) if since < policy.scale_out_cooldown => from,
        _ => view.running,
    }
}

fn scale_out(policy: &ScalingPolicy, view: &ScalingView<'_>) -> Option<Scaling> {
    // From 0 tasks (min 0), one datapoint triggers a scale-out (S6.8).
    let needed = if view.running == 0 && view.desired == 0 {
        1
    } else {
        HIGH_DATAPOINTS
    };
    let high = last(view.datapoints, needed)?;
    if !high.iter().all(|&m| m > policy.target) {
        return None;
    }
    let metric = *high.last()?;
    let current = scale_out_base(policy, view);
    // From 0 tasks, by the smallest possible amount (S6.8).
    let wanted = if current == 0 {
        1
    } else {
        proportional(current, metric, policy.target)
    };
    // Below min, a scale-out first jumps to min and continues from there (S6.8).
    let to = wanted.max(view.desired).max(policy.min).min(policy.max);
    (to > view.desired).then_some(Scaling::ScaleOut { to, metric })
}

fn scale_in(policy: &ScalingPolicy, view: &ScalingView<'_>) -> Option<Scaling> {
    if view.deploying {
        return None;
    }
    if view
        .last_scale_in
        .is_some_and(|since| since < policy.scale_in_cooldown)
    {
        return None;
    }
    let low = last(view.datapoints, LOW_DATAPOINTS)?;
    if !low.iter().all(|&m| m < policy.target * LOW_SHARE) {
        return None;
    }
    let metric = *low.last()?;
    // Below min, scale-in leaves the count alone; above max it first comes down to max
    // (S6.8).
    if view.desired <= policy.min {
        return None;
    }
    let wanted = proportional(view.running, metric, policy.target);
    let to = wanted.min(view.desired).clamp(policy.min, policy.max);
    (to < view.desired).then_some(Scaling::ScaleIn { to, metric })
}
