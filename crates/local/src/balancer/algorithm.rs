//! Choosing a target among a group's routable ones: round robin and least outstanding
//! requests (S5.15), with fail-open (S5.8).
//!
//! Pure functions over a slice of candidates, allocation-free: the hot path calls them for
//! every request.

use super::config::Algorithm;

/// What the algorithm needs to know about one candidate target.
pub(crate) trait Candidate {
    /// Whether the target may receive new requests at all (not draining).
    fn is_registered(&self) -> bool;
    /// Whether the target is healthy.
    fn is_healthy(&self) -> bool;
    /// Requests currently in flight to the target.
    fn in_flight(&self) -> usize;
}

/// Picks the index of the target for the next request, or `None` when no target is
/// registered (→ 503).
///
/// Only healthy targets are candidates; when none is healthy, every registered target is
/// (fail-open, S5.8 — `initial` targets included, DERIVED). `turn` is a counter the caller
/// increments per request: it drives round robin and spreads ties.
pub(crate) fn pick<C: Candidate>(
    algorithm: Algorithm,
    targets: &[C],
    turn: usize,
) -> Option<usize> {
    let healthy = targets.iter().filter(|t| t.is_healthy()).count();
    let eligible: fn(&C) -> bool = if healthy > 0 {
        C::is_healthy
    } else {
        C::is_registered
    };
    let count = if healthy > 0 {
        healthy
    } else {
        targets.iter().filter(|t| t.is_registered()).count()
    };
    if count == 0 {
        return None;
    }
    let start = turn % count;
    match algorithm {
        Algorithm::RoundRobin => nth_eligible(targets, eligible, start),
        Algorithm::LeastOutstandingRequests => {
            // Scan the eligible targets starting at the rotating offset, so equal loads are
            // shared in turn rather than always going to the first target.
            let mut best: Option<(usize, usize)> = None;
            for k in 0..count {
                let index = nth_eligible(targets, eligible, (start + k) % count)?;
                let load = targets[index].in_flight();
                if best.is_none_or(|(_, best_load)| load < best_load) {
                    best = Some((index, load));
                }
            }
            best.map(|(index, _)| index)
        }
    }
}

/// Index of the `n`-th target (0-based) for which `eligible` holds.
fn nth_eligible<C>(targets: &[C], eligible: fn(&C) -> bool, n: usize) -> Option<usize> {
    targets
        .iter()
        .enumerate()
        .filter(|(_, t)| eligible(t))
        .nth(n)
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Fake {
        registered: bool,
        healthy: bool,
        in_flight: usize,
    }

    impl Candidate for Fake {
        fn is_registered(&self) -> bool {
            self.registered
        }
        fn is_healthy(&self) -> bool {
            self.healthy
        }
        fn in_flight(&self) -> usize {
            self.in_flight
        }
    }

    const HEALTHY: Fake = Fake {
        registered: true,
        healthy: true,
        in_flight: 0,
    };
    const UNHEALTHY: Fake = Fake {
        registered: true,
        healthy: false,
        in_flight: 0,
    };
    const DRAINING: Fake = Fake {
        registered: false,
        healthy: false,
        in_flight: 0,
    };

    fn picks(algorithm: Algorithm, targets: &[Fake], turns: usize) -> Vec<Option<usize>> {
        (0..turns)
            .map(|turn| pick(algorithm, targets, turn))
            .collect()
    }

    #[test]
    fn round_robin_cycles_through_healthy_targets_only() {
        let targets = [HEALTHY, UNHEALTHY, HEALTHY, DRAINING, HEALTHY];
        assert_eq!(
            picks(Algorithm::RoundRobin, &targets, 6),
            [Some(0), Some(2), Some(4), Some(0), Some(2), Some(4)]
        );
    }

    #[test]
    fn all_unhealthy_fails_open_but_skips_draining() {
        let targets = [UNHEALTHY, DRAINING, UNHEALTHY];
        assert_eq!(
            picks(Algorithm::RoundRobin, &targets, 4),
            [Some(0), Some(2), Some(0), Some(2)]
        );
    }

    #[test]
    fn nothing_registered_picks_nothing() {
        assert_eq!(pick::<Fake>(Algorithm::RoundRobin, &[], 0), None);
        assert_eq!(pick(Algorithm::RoundRobin, &[DRAINING, DRAINING], 3), None);
        assert_eq!(
            pick(Algorithm::LeastOutstandingRequests, &[DRAINING], 0),
            None
        );
    }

    #[test]
    fn least_outstanding_requests_prefers_the_idlest_target() {
        let busy = Fake {
            in_flight: 5,
            ..HEALTHY
        };
        let idle_but_draining = DRAINING;
        let idle_but_unhealthy = UNHEALTHY;
        let less_busy = Fake {
            in_flight: 2,
            ..HEALTHY
        };
        let targets = [busy, idle_but_draining, less_busy, idle_but_unhealthy];
        assert_eq!(
            picks(Algorithm::LeastOutstandingRequests, &targets, 4),
            [Some(2); 4]
        );
    }

    #[test]
    fn least_outstanding_requests_shares_ties_in_turn() {
        let targets = [HEALTHY, HEALTHY, HEALTHY];
        assert_eq!(
            picks(Algorithm::LeastOutstandingRequests, &targets, 3),
            [Some(0), Some(1), Some(2)]
        );
    }
}
