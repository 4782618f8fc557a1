//! The process's file-descriptor budget: how many client connections the load balancer
//! may hold so that the runtime keeps descriptors for its own work.
//!
//! About 20,000 silent client connections once used every descriptor berth had: health
//! checks failed, replacement tasks could not start, the recovery file could not be
//! written and the control socket stopped answering. So the balancer holds at most
//! [`max_client_connections`] client connections, derived from `RLIMIT_NOFILE`:
//!
//! - the soft limit is first raised to the hard limit ([`raise_limit`]), as nginx
//!   (`worker_rlimit_nofile`) and HAProxy do at start: the soft limit is often 1024 while
//!   the hard one allows far more;
//! - a reserve of an eighth of the limit, and at least [`MIN_RESERVE`], is kept for the
//!   runtime itself: health checks (one connection per target at a time), task starts
//!   (pipes, the log files), state and log writes, PostgreSQL's socket, the control socket;
//! - half of the rest goes to client connections: an HTTP/1.1 client connection holds one
//!   descriptor and, while a request is in flight, one towards its target.
//!
//! An h2c client connection can hold one target connection per stream in flight; the
//! balancer bounds streams per connection at the ALB's 128, and a tight budget counts on
//! clients not using all of them at once. Over the bound the balancer stops accepting (the
//! kernel keeps new connections in the listen backlog) until a connection closes, as
//! HAProxy's `maxconn` does; connections idle for the idle timeout are closed, so silent
//! ones cannot hold the bound for longer than that.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept for the runtime's own work, at least.
pub const MIN_RESERVE: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a no-op when they are equal) and
/// returns the limit now in force. Tasks started after inherit it.
pub fn raise_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        // Not expected on Linux; 1024 is the usual default.
        return 1024;
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => return hard,
            Err(error) => {
                tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
            }
        }
    }
    soft
}

/// The most client connections the load balancer may hold under a descriptor limit of
/// `limit` (see the module documentation); at least 1.
pub fn max_client_connections(limit: u64) -> usize {
    let reserve = (limit / 8).max(MIN_RESERVE);
    let connections = limit.saturating_sub(reserve) / 2;
    usize::try_from(connections).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_a_reserve_and_room_for_target_connections() {
        let cases = [
            // limit, connections
            (256, 1),
            (1024, 384),
            (20_000, 8_750),
            (1_048_576, 458_752),
        ];
        for (limit, connections) in cases {
            assert_eq!(max_client_connections(limit), connections, "{limit}");
            let reserve = limit - 2 * connections as u64;
            assert!(
                reserve >= MIN_RESERVE.min(limit) || connections == 1,
                "{limit}"
            );
        }
    }

    #[test]
    fn raising_the_limit_reaches_the_hard_limit() {
        let limit = raise_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((limit, soft), (hard, hard));
    }
}
