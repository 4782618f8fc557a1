//! The connection pool, the embedded migrations and whether the database is usable.
//!
//! The pool connects lazily, so the process starts while PostgreSQL is down; a background
//! task applies the migrations (under sqlx's advisory lock, so tasks starting together take
//! turns) and retries until it succeeds. Until then data routes answer 503.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;
use crate::error::{AppError, chain};

/// Forward-only migrations, embedded at compile time from `apps/api/migrations`, applied
/// under sqlx's PostgreSQL advisory lock. Migrations this binary does not know (applied by a
/// newer version) are tolerated, so that a rollback to an older image still starts.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Connections per task: a few keep PostgreSQL's per-connection memory low and are enough
/// for a 1-vCPU task (each request holds one for a single short query).
const MAX_CONNECTIONS: u32 = 8;

/// PostgreSQL ends a session left idle inside a transaction this long: a second guard
/// (after [`detached`]) against a connection that holds row locks and a stale snapshot.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

/// How often unreferenced contents are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// The pool plus whether the schema is in place.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
    migrated: Arc<AtomicBool>,
}

impl Database {
    /// A pool that connects on first use (never fails here).
    pub fn connect_lazy(config: &Config) -> Database {
        let options = connect_options(config);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            // Short: while the database is down a request should get its 503 quickly.
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(300))
            // Stale connections (after a PostgreSQL restart) are caught by the ping on
            // release and by `retry_stale`; a ping before every query would halve throughput.
            .test_before_acquire(false)
            .before_acquire(|_connection, meta| {
                Box::pin(async move { Ok(opened_after_last_dead_connection(meta.age)) })
            })
            .connect_lazy_with(options);
        Database {
            pool,
            migrated: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The pool, once the schema is in place; 503 before.
    pub fn pool(&self) -> Result<&PgPool, AppError> {
        if self.migrated.load(Ordering::Acquire) {
            Ok(&self.pool)
        } else {
            Err(AppError::Unavailable {
                action: "waiting for the schema migrations",
                source: None,
            })
        }
    }

    /// Whether the database answers and the schema is in place (for `/api/health/ready`).
    pub async fn is_ready(&self) -> bool {
        if !self.migrated.load(Ordering::Acquire) {
            return false;
        }
        match sqlx::query("SELECT 1").execute(&self.pool).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(error = %chain(&error), "readiness check failed");
                false
            }
        }
    }

    /// Apply the migrations, retrying with backoff until they succeed; then keep sweeping
    /// unreferenced contents.
    pub async fn migrate_until_done(self) {
        let migrator = migrator();
        let mut delay = Duration::from_millis(200);
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => {
                    self.migrated.store(true, Ordering::Release);
                    tracing::info!("database schema is up to date");
                    break;
                }
                Err(error) => {
                    tracing::warn!(
                        error = %chain(&error),
                        retry_in_ms = delay.as_millis() as u64,
                        "cannot apply migrations yet"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.sweep_forever().await;
    }

    /// Every few minutes, delete contents left unreferenced by a task that died between a
    /// delete and its clean-up.
    async fn sweep_forever(self) {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            interval.tick().await;
            match crate::store::sweep_orphan_blobs(&self.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "deleted unreferenced contents"),
                Err(error) => tracing::warn!(error = %chain(&error), "orphan sweep failed"),
            }
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Run `work` (a whole transaction) to its end in a task of its own, whatever happens to the
/// request that asked for it.
///
/// A client that disconnects makes the server drop its request's future, wherever it is
/// waiting. sqlx's `begin()` is not cancel-safe on PostgreSQL (sqlx issue 4393): dropped
/// after `BEGIN` went out, it returns the connection to the pool inside a transaction, and
/// later statements on it run in that stale transaction (old `now()`, held locks). A
/// spawned task is never dropped half-way, so its transaction always commits or rolls back.
pub async fn detached<T: Send + 'static>(
    action: &'static str,
    work: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, AppError> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(|e| AppError::db(action, e)),
        Err(error) => Err(AppError::internal(action, error)),
    }
}

/// How each connection is opened: where, as whom, and the session settings.
fn connect_options(config: &Config) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&config.db_host)
        .port(config.db_port)
        .database(&config.db_name)
        .username(&config.db_user)
        .password(&config.db_password)
        .application_name("file-analyzer-api")
        .options([(
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        )])
}

/// When (milliseconds after [`epoch`], plus one) a query last failed on a dead connection.
/// Connections opened before that are discarded at their next checkout instead of each
/// failing one more request: after a PostgreSQL restart every pooled connection is dead.
static LAST_DEAD_CONNECTION: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// Record that a pooled connection turned out dead (called on connection-level errors).
pub fn note_dead_connection() {
    LAST_DEAD_CONNECTION.fetch_max(now_ms(), Ordering::Relaxed);
}

fn opened_after_last_dead_connection(age: Duration) -> bool {
    let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    now_ms().saturating_sub(age_ms) > LAST_DEAD_CONNECTION.load(Ordering::Relaxed)
}

/// Run `op` and, when it failed because a pooled connection had died (PostgreSQL restarted
/// since it was opened), again on a fresh connection (twice at most). Only for idempotent
/// work.
pub async fn retry_stale<T, F, Fut>(mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut retries = 2;
    loop {
        match op().await {
            Err(error) if retries > 0 && is_stale_connection(&error) => {
                note_dead_connection();
                retries -= 1;
                tracing::debug!(error = %chain(&error), "retrying on a fresh connection");
            }
            other => return other,
        }
    }
}

/// A dead pooled connection, as opposed to a database that cannot be reached at all
/// (retrying a pool timeout would only double the wait).
fn is_stale_connection(error: &sqlx::Error) -> bool {
    !matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
        && crate::error::is_connection_error(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_end_sessions_left_idle_in_a_transaction() {
        let config = Config::from_lookup(|_| None).unwrap();
        let options = connect_options(&config);
        let startup = options.get_options().unwrap_or_default();
        assert!(
            startup.contains(&format!(
                "idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}"
            )),
            "{startup}"
        );
    }
}
