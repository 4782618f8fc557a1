//! The balancer's own configuration types.
//!
//! They do not know the stack file: the runtime maps a `berth.toml` into them. Defaults are
//! the ALB's documented defaults (ECS-SEMANTICS §5); local stacks usually shorten the
//! intervals.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::BalancerError;

/// One listener: its rules, the default action and the target groups they forward to.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Rules other than the default one, in any order: they are evaluated by priority,
    /// lowest first (S5.22).
    pub rules: Vec<Rule>,
    /// The default rule's action, applied when no rule matches (evaluated last).
    pub default_action: Forward,
    /// Every target group a rule may forward to, now or after [`super::Balancer::set_rules`].
    pub target_groups: Vec<TargetGroupConfig>,
    /// How long a client connection may stay idle between requests (S5.14, default 60 s).
    pub idle_timeout: Duration,
}

/// How the listener uses the machine: worker threads and the bound on client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Worker threads, each with its own listening socket and runtime (at least 1).
    pub workers: usize,
    /// Client connections held at once, over all workers; each worker gets an equal share
    /// (at least 1). Over it, new connections wait in the listen backlog.
    pub max_connections: usize,
}

impl ListenerLimits {
    /// One worker per core, and the connection bound the open-files limit allows after
    /// raising it to the hard limit (`crate::fds`).
    pub fn from_system() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            max_connections: crate::fds::max_client_connections(crate::fds::raise_limit()),
        }
    }
}

/// A listener rule: a `path-pattern` condition and a forward action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1–50000, unique per listener; lower values are evaluated first.
    pub priority: u32,
    /// ALB path patterns; the rule matches when any of them matches (values are alternatives).
    pub path_patterns: Vec<String>,
    /// What a matching request is sent to.
    pub action: Forward,
}

impl Rule {
    /// A rule forwarding every path matching one of `path_patterns` to one target group.
    pub fn forward(
        priority: u32,
        path_patterns: impl IntoIterator<Item = impl Into<String>>,
        target_group: impl Into<String>,
    ) -> Self {
        Self {
            priority,
            path_patterns: path_patterns.into_iter().map(Into::into).collect(),
            action: Forward::to(target_group),
        }
    }
}

/// Which rule of a listener an operation addresses: the default rule or the rule with a
/// priority (priorities are unique per listener, S5.22, so they name a rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleRef {
    /// The default rule, evaluated last.
    Default,
    /// The rule with this priority.
    Priority(u32),
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default rule"),
            Self::Priority(p) => write!(f, "rule {p}"),
        }
    }
}

/// A `forward` action: one target group, or several with weights (blue/green, canary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Target group names with weights 0–999; requests are split in proportion to the
    /// weights (S5.29), and a weight of 0 receives no new requests.
    pub target_groups: Vec<WeightedTargetGroup>,
}

impl Forward {
    /// Forward everything to one target group.
    pub fn to(target_group: impl Into<String>) -> Self {
        Self {
            target_groups: vec![WeightedTargetGroup {
                name: target_group.into(),
                weight: 1,
            }],
        }
    }

    /// Forward to several target groups in proportion to their weights.
    pub fn weighted(target_groups: impl IntoIterator<Item = (impl Into<String>, u32)>) -> Self {
        Self {
            target_groups: target_groups
                .into_iter()
                .map(|(name, weight)| WeightedTargetGroup {
                    name: name.into(),
                    weight,
                })
                .collect(),
        }
    }
}

/// A target group and its weight inside a [`Forward`] action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    /// The target group's name, as in [`TargetGroupConfig::name`].
    pub name: String,
    /// 0–999.
    pub weight: u32,
}

/// A target group: its health check, draining delay, algorithm and request timeout.
#[derive(Debug, Clone)]
pub struct TargetGroupConfig {
    /// Unique name, used by rules and in [`super::TargetHealth`].
    pub name: String,
    /// How targets are checked.
    pub health_check: HealthCheckConfig,
    /// How long a deregistered target keeps draining at most (S5.18, default 300 s).
    pub deregistration_delay: Duration,
    /// How a target is chosen among the routable ones.
    pub algorithm: Algorithm,
    /// How long the balancer waits for a target's response headers before answering 504
    /// (the ALB's idle timeout towards targets, S5.12).
    pub request_timeout: Duration,
}

impl TargetGroupConfig {
    /// A target group with the ALB's defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            health_check: HealthCheckConfig::default(),
            deregistration_delay: Duration::from_secs(300),
            algorithm: Algorithm::RoundRobin,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The load-balancing algorithm of a target group (S5.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Each routable target in turn.
    #[default]
    RoundRobin,
    /// The routable target with the fewest requests in flight.
    LeastOutstandingRequests,
}

/// HTTP health-check settings (S5.3).
#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    /// Request path of the `GET`, e.g. `/health`.
    pub path: String,
    /// Time between two checks of one target (default 30 s).
    pub interval: Duration,
    /// A check without a response within this time fails with `Target.Timeout`
    /// (default 5 s); must be smaller than the interval (S5.4).
    pub timeout: Duration,
    /// Consecutive successes that make a target healthy (default 5).
    pub healthy_threshold: u32,
    /// Consecutive failures that make a target unhealthy (default 2).
    pub unhealthy_threshold: u32,
    /// Status codes that count as success (default `200`).
    pub matcher: Matcher,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            path: "/".to_owned(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: Matcher::default(),
        }
    }
}

/// Successful health-check status codes: `"200"`, `"200-299"`, `"200,302"` (S5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    ranges: Vec<(u16, u16)>,
}

impl Matcher {
    /// Whether `status` counts as a successful check.
    pub fn matches(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Self {
            ranges: vec![(200, 200)],
        }
    }
}

impl FromStr for Matcher {
    type Err = BalancerError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || BalancerError::InvalidMatcher {
            matcher: text.to_owned(),
        };
        let code = |part: &str| -> Result<u16, BalancerError> {
            let code: u16 = part.trim().parse().map_err(|_| invalid())?;
            // The ALB accepts 200–499 for HTTP health checks.
            if (200..=499).contains(&code) {
                Ok(code)
            } else {
                Err(invalid())
            }
        };
        let ranges = text
            .split(',')
            .map(|part| match part.split_once('-') {
                Some((low, high)) => {
                    let (low, high) = (code(low)?, code(high)?);
                    if low <= high {
                        Ok((low, high))
                    } else {
                        Err(invalid())
                    }
                }
                None => code(part).map(|c| (c, c)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { ranges })
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_parses_codes_lists_and_ranges() {
        let cases: &[(&str, &[u16], &[u16])] = &[
            ("200", &[200], &[201, 302, 199]),
            ("200-299", &[200, 250, 299], &[300, 199]),
            ("200,302", &[200, 302], &[301, 201]),
            (" 200 , 400-404 ", &[200, 400, 404], &[405]),
        ];
        for (text, good, bad) in cases {
            let matcher: Matcher = text.parse().unwrap();
            for code in *good {
                assert!(matcher.matches(*code), "{text} should match {code}");
            }
            for code in *bad {
                assert!(!matcher.matches(*code), "{text} should not match {code}");
            }
        }
    }

    #[test]
    fn matcher_rejects_bad_text() {
        for text in ["", "abc", "299-200", "100", "500", "200-", "200,,201"] {
            assert!(text.parse::<Matcher>().is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn matcher_displays_as_written() {
        let matcher: Matcher = "200,300-302".parse().unwrap();
        assert_eq!(matcher.to_string(), "200,300-302");
    }
}
