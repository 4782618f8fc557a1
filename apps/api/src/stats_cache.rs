//! The rendered `GET /api/files/stats/summary`, reused for a quarter of a second.
//!
//! The summary is one query over the counter slots (`0004_counter_slots.sql`), but a query
//! per request is what bounds it: the bare health route answers five times as many requests.
//! Unlike the listing (`list_cache`), whose version check is itself a query, only a cache
//! that asks nothing per request gets the summary near the health route's speed. What that
//! costs, on purpose: a write made through another task shows in this task's summary up to
//! [`MAX_AGE`] late. A write made through this task shows at once ([`StatsCache::changed`]
//! makes the next request recompute), so a client that uploads and then reads the summary
//! through the same task always sees its upload. One request recomputes at a time; the
//! others wait for its answer instead of all querying at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long a summary is served without asking the database again.
pub const MAX_AGE: Duration = Duration::from_millis(250);

pub struct StatsCache {
    max_age: Duration,
    /// Bumped after each write this task committed.
    writes: AtomicU64,
    cached: Mutex<Option<Rendered>>,
    /// Held while one request recomputes.
    refreshing: tokio::sync::Mutex<()>,
}

struct Rendered {
    at: Instant,
    /// [`StatsCache::writes`] as it was before the query ran.
    writes: u64,
    body: Bytes,
}

impl Default for StatsCache {
    fn default() -> Self {
        Self::with_max_age(MAX_AGE)
    }
}

impl StatsCache {
    /// A cache whose summaries are served for `max_age` (tests use an hour, so that a slow
    /// machine never ages one in the middle of a check).
    pub fn with_max_age(max_age: Duration) -> Self {
        Self {
            max_age,
            writes: AtomicU64::new(0),
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// This task committed a write to `files` or `blobs`: the next request recomputes.
    pub fn changed(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// The cached summary, if younger than the maximum age and no write of this task came after
    /// it was computed.
    pub fn fresh(&self, now: Instant) -> Option<Bytes> {
        let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let rendered = cached.as_ref()?;
        (now.saturating_duration_since(rendered.at) < self.max_age
            && rendered.writes == self.writes.load(Ordering::SeqCst))
        .then(|| rendered.body.clone())
    }

    /// The cached summary if fresh; otherwise `render`'s, computed by one request at a time
    /// (the others wait, then take its answer). `render` failing caches nothing.
    pub async fn get_or_render<E, F>(&self, render: impl FnOnce() -> F) -> Result<Bytes, E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        if let Some(body) = self.fresh(Instant::now()) {
            return Ok(body);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(body) = self.fresh(Instant::now()) {
            return Ok(body);
        }
        // Read before the query: a write committed while it runs bumps past this, so the
        // result, which may lack that write, is recomputed on the next request.
        let writes = self.writes.load(Ordering::SeqCst);
        let at = Instant::now();
        let body = render().await?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(Rendered {
            at,
            writes,
            body: body.clone(),
        });
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    async fn render(cache: &StatsCache, queries: &AtomicUsize) -> Bytes {
        cache
            .get_or_render(|| async {
                let n = queries.fetch_add(1, Ordering::SeqCst) + 1;
                Ok::<_, ()>(Bytes::from(format!("summary {n}")))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_summary_is_reused_until_it_ages_or_this_task_writes() {
        let cache = StatsCache::with_max_age(HOUR);
        let queries = AtomicUsize::new(0);
        assert_eq!(render(&cache, &queries).await, "summary 1");
        assert_eq!(render(&cache, &queries).await, "summary 1");
        cache.changed();
        assert_eq!(render(&cache, &queries).await, "summary 2", "own write");
        // Aged: the check itself, at a later instant (no sleeping).
        assert!(cache.fresh(Instant::now()).is_some());
        assert!(cache.fresh(Instant::now() + HOUR).is_none());
    }

    #[tokio::test]
    async fn a_failed_render_caches_nothing() {
        let cache = StatsCache::default();
        let failed = cache
            .get_or_render(|| async { Err::<Bytes, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert!(cache.fresh(Instant::now()).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_query() {
        let cache = Arc::new(StatsCache::with_max_age(HOUR));
        let queries = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let (cache, queries, mut gate) = (cache.clone(), queries.clone(), gate.clone());
            waiting.push(tokio::spawn(async move {
                cache
                    .get_or_render(|| async move {
                        queries.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        Ok::<_, ()>(Bytes::from_static(b"summary"))
                    })
                    .await
                    .unwrap()
            }));
        }
        release.send(true).unwrap();
        for request in waiting {
            assert_eq!(request.await.unwrap(), "summary");
        }
        assert_eq!(queries.load(Ordering::SeqCst), 1);
    }
}
