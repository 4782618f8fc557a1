//! The scaler: Application Auto Scaling's target tracking for one service (ECS-SEMANTICS
//! §6), carried out on the embedded runtime.
//!
//! Every metric period it takes one datapoint — the service's average CPU or memory
//! utilization from its tasks' processes ([`usage`](super::usage)), or the requests per
//! target the balancer routed — asks [`scaling::decide`] and, on a decision, sets the
//! service's desired count with the activity as a service event (S6.11). The scheduler then
//! starts or stops tasks as for `berth scale`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_spec::{Autoscaling, ScalingTarget};
use chrono::Utc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::usage::{TICKS_PER_SECOND, groups_usage};
use crate::service::scaling::{
    self, LOW_DATAPOINTS, Scaling, ScalingPolicy, ScalingView, scale_out_base,
};
use crate::service::{
    AutoscalingStatus, RolloutState, ScalingActivity, ServiceHandle, ServiceStatus, TargetRouter,
};
use crate::task::TaskStatus;

/// Activities `berth status` keeps per service.
const ACTIVITIES_KEPT: usize = 10;

/// What the scaler measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `ECSServiceAverageCPUUtilization`.
    Cpu,
    /// `ECSServiceAverageMemoryUtilization`.
    Memory,
    /// `ALBRequestCountPerTarget` (per target per minute).
    RequestsPerTarget,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Self::Cpu => "ECSServiceAverageCPUUtilization",
            Self::Memory => "ECSServiceAverageMemoryUtilization",
            Self::RequestsPerTarget => "ALBRequestCountPerTarget",
        }
    }
}

/// One service's scalable target and policy, in the scaler's terms.
#[derive(Debug, Clone)]
pub struct ScalerSettings {
    /// The ECS service name.
    pub service: String,
    /// `service/<cluster>/<service>` (S6.1), for the alarm names in activities.
    pub resource_id: String,
    pub policy: ScalingPolicy,
    pub metric: Metric,
    /// One datapoint per period.
    pub period: Duration,
    pub target_group: Option<String>,
    /// The task's CPU units (1024 = one core) and memory (MiB): utilization's denominators
    /// (S6.3).
    pub cpu_units: u32,
    pub memory_mib: u32,
}

impl ScalerSettings {
    /// The stack's `autoscaling` table for one service.
    pub fn new(
        cluster: &str,
        service: &berth_spec::Service,
        autoscaling: &Autoscaling,
        period: Duration,
    ) -> Self {
        let (metric, target) = match autoscaling.target {
            ScalingTarget::CpuPercent(p) => (Metric::Cpu, p),
            ScalingTarget::MemoryPercent(p) => (Metric::Memory, p),
            ScalingTarget::RequestsPerTarget(n) => (Metric::RequestsPerTarget, f64::from(n)),
        };
        Self {
            service: service.service_name.clone(),
            resource_id: format!("service/{cluster}/{}", service.service_name),
            policy: ScalingPolicy {
                min: autoscaling.min,
                max: autoscaling.max,
                target,
                scale_out_cooldown: autoscaling.scale_out_cooldown,
                scale_in_cooldown: autoscaling.scale_in_cooldown,
            },
            metric,
            period,
            target_group: Some(service.target_group.clone()),
            cpu_units: service.cpu,
            memory_mib: service.memory,
        }
    }

    fn status(&self) -> AutoscalingStatus {
        AutoscalingStatus {
            min_capacity: self.policy.min,
            max_capacity: self.policy.max,
            metric: self.metric.name().to_owned(),
            target_value: self.policy.target,
            scale_out_cooldown_seconds: self.policy.scale_out_cooldown.as_secs_f64(),
            scale_in_cooldown_seconds: self.policy.scale_in_cooldown.as_secs_f64(),
            last_datapoint: None,
            activities: Vec::new(),
        }
    }
}

/// A running scaler: what `berth status` shows of it.
#[derive(Clone)]
pub struct Scaler {
    service: String,
    status: Arc<Mutex<AutoscalingStatus>>,
}

impl Scaler {
    /// Starts scaling `handle`'s service until `stop`.
    pub fn spawn(
        settings: ScalerSettings,
        handle: ServiceHandle,
        router: Option<Arc<dyn TargetRouter>>,
        stop: CancellationToken,
    ) -> Self {
        let status = Arc::new(Mutex::new(settings.status()));
        let scaler = Self {
            service: settings.service.clone(),
            status: status.clone(),
        };
        let run = Run {
            sampler: Sampler {
                metric: settings.metric,
                target_group: settings.target_group.clone(),
                router,
                last: None,
            },
            settings,
            handle,
            status,
            datapoints: VecDeque::new(),
            last_scale_out: None,
            last_scale_in: None,
        };
        tokio::spawn(async move {
            tokio::select! {
                () = run.run() => {}
                () = stop.cancelled() => {}
            }
        });
        scaler
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Adds the scaler's view to the service's status.
    pub fn fill(&self, status: &mut ServiceStatus) {
        status.autoscaling = Some(
            self.status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        );
    }
}

struct Run {
    settings: ScalerSettings,
    handle: ServiceHandle,
    status: Arc<Mutex<AutoscalingStatus>>,
    sampler: Sampler,
    /// Oldest first; as many as the low alarm needs.
    datapoints: VecDeque<Option<f64>>,
    /// When, and from which capacity.
    last_scale_out: Option<(Instant, u32)>,
    last_scale_in: Option<Instant>,
}

impl Run {
    async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.settings.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is at once: it sets the baseline the first datapoint counts from.
        ticks.tick().await;
        self.sampler.sample(&self.handle.status(), &self.settings);
        loop {
            ticks.tick().await;
            self.round();
        }
    }

    fn round(&mut self) {
        let now = Instant::now();
        let service = self.handle.status();
        let datapoint = self.sampler.sample(&service, &self.settings);
        self.datapoints.push_back(datapoint);
        while self.datapoints.len() > LOW_DATAPOINTS {
            self.datapoints.pop_front();
        }
        let datapoints = self.datapoints.make_contiguous();
        let view = ScalingView {
            running: service.running_count,
            desired: service.desired_count,
            datapoints,
            // Application Auto Scaling turns scale-in off while a deployment is in progress
            // (S6.10); the first deployment `berth up` makes counts too.
            deploying: service
                .deployments
                .iter()
                .any(|d| d.rollout_state == RolloutState::InProgress),
            last_scale_out: self
                .last_scale_out
                .map(|(at, from)| (now.duration_since(at), from)),
            last_scale_in: self.last_scale_in.map(|at| now.duration_since(at)),
        };
        let policy = &self.settings.policy;
        let decision = scaling::decide(policy, &view);
        let base = scale_out_base(policy, &view);
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.last_datapoint = datapoint;
        let (to, metric, alarm) = match decision {
            Scaling::Hold => return,
            Scaling::ScaleOut { to, metric } => {
                self.last_scale_out = Some((now, base));
                // A scale-out cancels the scale-in cooldown (S6.4).
                self.last_scale_in = None;
                (to, metric, "AlarmHigh")
            }
            Scaling::ScaleIn { to, metric } => {
                self.last_scale_in = Some(now);
                (to, metric, "AlarmLow")
            }
        };
        let activity = ScalingActivity {
            at: Utc::now(),
            from: service.desired_count,
            to,
            description: format!("Setting desired count to {to}."),
            cause: format!(
                "monitor alarm TargetTracking-{}-{alarm} in state ALARM triggered policy {}-target-tracking ({} {metric:.1}, target {})",
                self.settings.resource_id,
                self.settings.service,
                self.settings.metric.name(),
                policy.target
            ),
        };
        // The wording of Application Auto Scaling's activity (its StatusMessage and Cause),
        // which ECS shows as a service event (S6.11).
        let message = format!(
            "Message: Successfully set desired count to {to}. Change successfully fulfilled by ecs. Cause: {}",
            activity.cause
        );
        status.activities.insert(0, activity);
        status.activities.truncate(ACTIVITIES_KEPT);
        drop(status);
        self.handle.autoscale(to, message);
    }
}

/// Turns what it reads now, against what it read last time, into one datapoint.
struct Sampler {
    metric: Metric,
    target_group: Option<String>,
    router: Option<Arc<dyn TargetRouter>>,
    last: Option<Reading>,
}

/// Counters at one instant.
struct Reading {
    at: Instant,
    /// CPU ticks per task process group.
    ticks: HashMap<u32, u64>,
    requests: Option<u64>,
}

impl Sampler {
    /// The datapoint for the period since the last call (`None`: insufficient data).
    fn sample(&mut self, service: &ServiceStatus, settings: &ScalerSettings) -> Option<f64> {
        let groups: Vec<u32> = service
            .tasks
            .iter()
            .filter(|t| t.task.last_status == TaskStatus::Running)
            .filter_map(|t| t.task.pid)
            .collect();
        let usage = match self.metric {
            Metric::Cpu | Metric::Memory => groups_usage(&groups),
            Metric::RequestsPerTarget => HashMap::new(),
        };
        let reading = Reading {
            at: Instant::now(),
            ticks: usage.iter().map(|(g, u)| (*g, u.cpu_ticks)).collect(),
            requests: match (&self.router, &self.target_group) {
                (Some(router), Some(tg)) => router.request_count(tg),
                _ => None,
            },
        };
        let last = self.last.replace(reading);
        let (last, now) = (last?, self.last.as_ref()?);
        let seconds = now.at.duration_since(last.at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let tasks = groups.len() as f64;
        match self.metric {
            // (CPU units used × 100) / (task CPU units × tasks) (S6.3); a task new in this
            // period counts from its start.
            Metric::Cpu => {
                if usage.is_empty() {
                    return None;
                }
                let ticks: u64 = now
                    .ticks
                    .iter()
                    .map(|(g, t)| t.saturating_sub(last.ticks.get(g).copied().unwrap_or(0)))
                    .sum();
                let cores = ticks as f64 / TICKS_PER_SECOND as f64 / seconds;
                Some(cores * 1024.0 * 100.0 / (f64::from(settings.cpu_units) * tasks))
            }
            Metric::Memory => {
                if usage.is_empty() {
                    return None;
                }
                let bytes: u64 = usage.values().map(|u| u.rss_bytes).sum();
                let mib = bytes as f64 / (1024.0 * 1024.0);
                Some(mib * 100.0 / (f64::from(settings.memory_mib) * tasks))
            }
            // Requests per target per minute; with no task running, the requests themselves
            // (a service at 0 scales out on them, S6.8).
            Metric::RequestsPerTarget => {
                let requests = now.requests?.saturating_sub(last.requests?) as f64;
                let per_minute = requests * 60.0 / seconds;
                Some(per_minute / tasks.max(1.0))
            }
        }
    }
}
