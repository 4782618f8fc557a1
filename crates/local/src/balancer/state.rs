//! Target health as a pure state machine: states, reason codes and descriptions (S5.1, S5.2),
//! and the consecutive-success/failure counting of health checks (S5.5, S5.6).

use std::fmt;

use serde::Serialize;

pub use berth_spec::status::TargetState;

/// Why a target is in its state (S5.1); serialized as AWS spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ReasonCode {
    /// Just registered, no check done yet.
    #[serde(rename = "Elb.RegistrationInProgress")]
    RegistrationInProgress,
    /// Checks have started but not yet reached the healthy threshold.
    #[serde(rename = "Elb.InitialHealthChecking")]
    InitialHealthChecking,
    /// The check got a status the matcher does not accept.
    #[serde(rename = "Target.ResponseCodeMismatch")]
    ResponseCodeMismatch,
    /// The check got no response within the timeout.
    #[serde(rename = "Target.Timeout")]
    Timeout,
    /// The check could not connect or got a malformed response.
    #[serde(rename = "Target.FailedHealthChecks")]
    FailedHealthChecks,
    /// Deregistered, draining.
    #[serde(rename = "Target.DeregistrationInProgress")]
    DeregistrationInProgress,
    /// Not registered (any more).
    #[serde(rename = "Target.NotRegistered")]
    NotRegistered,
}

impl ReasonCode {
    /// The code as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegistrationInProgress => "Elb.RegistrationInProgress",
            Self::InitialHealthChecking => "Elb.InitialHealthChecking",
            Self::ResponseCodeMismatch => "Target.ResponseCodeMismatch",
            Self::Timeout => "Target.Timeout",
            Self::FailedHealthChecks => "Target.FailedHealthChecks",
            Self::DeregistrationInProgress => "Target.DeregistrationInProgress",
            Self::NotRegistered => "Target.NotRegistered",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckResult {
    /// A status the matcher accepts.
    Passed,
    /// A status the matcher does not accept.
    ResponseCodeMismatch(u16),
    /// No response within the timeout.
    Timeout,
    /// Connection refused or reset, or a malformed response.
    Failed,
}

/// A target's health: state, reason and the consecutive check counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStatus {
    state: TargetState,
    reason: Option<ReasonCode>,
    /// The status of the last mismatching check, for the description.
    mismatch_code: Option<u16>,
    successes: u32,
    failures: u32,
}

impl HealthStatus {
    /// A newly registered target: `initial`, `Elb.RegistrationInProgress`.
    pub fn registered() -> Self {
        Self {
            state: TargetState::Initial,
            reason: Some(ReasonCode::RegistrationInProgress),
            mismatch_code: None,
            successes: 0,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> TargetState {
        self.state
    }

    /// The current reason code (none when healthy).
    pub fn reason(&self) -> Option<ReasonCode> {
        self.reason
    }

    /// The description AWS gives for the reason code (S5.2).
    pub fn description(&self) -> Option<String> {
        let reason = self.reason?;
        Some(match reason {
            ReasonCode::RegistrationInProgress => "Target registration is in progress".into(),
            ReasonCode::InitialHealthChecking => "Initial health checks in progress".into(),
            ReasonCode::ResponseCodeMismatch => format!(
                "Health checks failed with these codes: [{}]",
                self.mismatch_code.unwrap_or_default()
            ),
            ReasonCode::Timeout => "Request timed out".into(),
            ReasonCode::FailedHealthChecks => "Health checks failed".into(),
            ReasonCode::DeregistrationInProgress => "Target deregistration is in progress".into(),
            ReasonCode::NotRegistered => "Target is not registered to the target group".into(),
        })
    }

    /// Counts one health-check result against the thresholds; returns whether the state or
    /// the reason changed.
    ///
    /// `initial` becomes `healthy` after `healthy_threshold` consecutive successes (S5.6,
    /// the spec's choice) and `unhealthy` after `unhealthy_threshold` consecutive failures;
    /// `healthy` and `unhealthy` flip after the same counts (S5.5). A failing `unhealthy`
    /// target keeps its state but takes the latest failure's reason. Draining and unused
    /// targets ignore checks.
    pub fn record(
        &mut self,
        result: CheckResult,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> bool {
        if !matches!(
            self.state,
            TargetState::Initial | TargetState::Healthy | TargetState::Unhealthy
        ) {
            return false;
        }
        let before = (self.state, self.reason, self.mismatch_code);
        match result {
            CheckResult::Passed => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                if self.successes >= healthy_threshold {
                    self.state = TargetState::Healthy;
                    self.reason = None;
                    self.mismatch_code = None;
                } else if self.state == TargetState::Initial {
                    self.reason = Some(ReasonCode::InitialHealthChecking);
                }
            }
            failure => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                let (reason, code) = match failure {
                    CheckResult::ResponseCodeMismatch(code) => {
                        (ReasonCode::ResponseCodeMismatch, Some(code))
                    }
                    CheckResult::Timeout => (ReasonCode::Timeout, None),
                    _ => (ReasonCode::FailedHealthChecks, None),
                };
                if self.failures >= unhealthy_threshold || self.state == TargetState::Unhealthy {
                    self.state = TargetState::Unhealthy;
                    self.reason = Some(reason);
                    self.mismatch_code = code;
                } else if self.state == TargetState::Initial {
                    self.reason = Some(ReasonCode::InitialHealthChecking);
                }
            }
        }
        before != (self.state, self.reason, self.mismatch_code)
    }

    /// Deregistration started: `draining`, `Target.DeregistrationInProgress`.
    pub fn start_draining(&mut self) {
        self.state = TargetState::Draining;
        self.reason = Some(ReasonCode::DeregistrationInProgress);
        self.mismatch_code = None;
    }

    /// Deregistration finished: `unused`, `Target.NotRegistered`.
    pub fn finish_draining(&mut self) {
        self.state = TargetState::Unused;
        self.reason = Some(ReasonCode::NotRegistered);
        self.mismatch_code = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckResult::*;
    use TargetState::*;

    /// Feeds `results` with thresholds healthy 3 / unhealthy 2 and returns the state and
    /// reason after each one.
    fn run(results: &[CheckResult]) -> Vec<(TargetState, Option<ReasonCode>)> {
        let mut status = HealthStatus::registered();
        results
            .iter()
            .map(|&result| {
                status.record(result, 3, 2);
                (status.state(), status.reason())
            })
            .collect()
    }

    #[test]
    fn a_new_target_is_initial_with_registration_in_progress() {
        let status = HealthStatus::registered();
        assert_eq!(status.state(), Initial);
        assert_eq!(status.reason(), Some(ReasonCode::RegistrationInProgress));
        assert_eq!(
            status.description().as_deref(),
            Some("Target registration is in progress")
        );
    }

    #[test]
    fn initial_becomes_healthy_after_healthy_threshold_successes() {
        let checking = Some(ReasonCode::InitialHealthChecking);
        assert_eq!(
            run(&[Passed, Passed, Passed]),
            [(Initial, checking), (Initial, checking), (Healthy, None)]
        );
    }

    #[test]
    fn a_failure_resets_the_success_count() {
        let states: Vec<_> = run(&[Passed, Passed, Timeout, Passed, Passed, Passed])
            .into_iter()
            .map(|(state, _)| state)
            .collect();
        assert_eq!(
            states,
            [Initial, Initial, Initial, Initial, Initial, Healthy]
        );
    }

    #[test]
    fn initial_becomes_unhealthy_after_unhealthy_threshold_failures() {
        assert_eq!(
            run(&[Failed, Failed]),
            [
                (Initial, Some(ReasonCode::InitialHealthChecking)),
                (Unhealthy, Some(ReasonCode::FailedHealthChecks))
            ]
        );
    }

    #[test]
    fn healthy_becomes_unhealthy_only_after_consecutive_failures() {
        let history = run(&[
            Passed,
            Passed,
            Passed,
            ResponseCodeMismatch(503),
            Passed,
            ResponseCodeMismatch(503),
            ResponseCodeMismatch(500),
        ]);
        let states: Vec<_> = history.iter().map(|(state, _)| *state).collect();
        assert_eq!(
            states,
            [
                Initial, Initial, Healthy, Healthy, Healthy, Healthy, Unhealthy
            ]
        );
        assert_eq!(history[6].1, Some(ReasonCode::ResponseCodeMismatch));
    }

    #[test]
    fn reason_codes_follow_the_failure_kind() {
        let cases = [
            (
                ResponseCodeMismatch(404),
                ReasonCode::ResponseCodeMismatch,
                "Health checks failed with these codes: [404]",
            ),
            (Timeout, ReasonCode::Timeout, "Request timed out"),
            (
                Failed,
                ReasonCode::FailedHealthChecks,
                "Health checks failed",
            ),
        ];
        for (failure, reason, description) in cases {
            let mut status = HealthStatus::registered();
            status.record(failure, 3, 2);
            status.record(failure, 3, 2);
            assert_eq!(status.state(), Unhealthy);
            assert_eq!(status.reason(), Some(reason));
            assert_eq!(status.description().as_deref(), Some(description));
        }
    }

    #[test]
    fn unhealthy_takes_the_latest_reason_and_recovers_after_healthy_threshold() {
        let mut status = HealthStatus::registered();
        status.record(Timeout, 3, 2);
        status.record(Timeout, 3, 2);
        assert_eq!(status.reason(), Some(ReasonCode::Timeout));
        assert!(status.record(ResponseCodeMismatch(500), 3, 2));
        assert_eq!(status.reason(), Some(ReasonCode::ResponseCodeMismatch));
        // Same failure again: nothing changes, nothing to report.
        assert!(!status.record(ResponseCodeMismatch(500), 3, 2));
        assert!(!status.record(Passed, 3, 2));
        assert!(!status.record(Passed, 3, 2));
        assert_eq!(status.state(), Unhealthy);
        assert!(status.record(Passed, 3, 2));
        assert_eq!(status.state(), Healthy);
        assert_eq!(status.reason(), None);
        assert_eq!(status.description(), None);
    }

    #[test]
    fn draining_and_unused_ignore_checks() {
        let mut status = HealthStatus::registered();
        status.start_draining();
        assert_eq!(status.state(), Draining);
        assert_eq!(status.reason(), Some(ReasonCode::DeregistrationInProgress));
        assert!(!status.record(Passed, 1, 1));
        assert!(!status.record(Failed, 1, 1));
        assert_eq!(status.state(), Draining);
        status.finish_draining();
        assert_eq!(status.state(), Unused);
        assert_eq!(status.reason(), Some(ReasonCode::NotRegistered));
        assert!(!status.record(Passed, 1, 1));
        assert_eq!(status.state(), Unused);
    }

    #[test]
    fn states_and_reasons_serialize_as_aws_spells_them() {
        assert_eq!(serde_json::to_string(&Initial).unwrap(), r#""initial""#);
        assert_eq!(serde_json::to_string(&Draining).unwrap(), r#""draining""#);
        assert_eq!(
            serde_json::to_string(&ReasonCode::RegistrationInProgress).unwrap(),
            r#""Elb.RegistrationInProgress""#
        );
        assert_eq!(
            serde_json::to_string(&ReasonCode::ResponseCodeMismatch).unwrap(),
            r#""Target.ResponseCodeMismatch""#
        );
        assert_eq!(ReasonCode::Timeout.to_string(), "Target.Timeout");
        assert_eq!(Unavailable.to_string(), "unavailable");
    }
}
