//! Rendered `GET /api/files` pages, reused while the `files_version` counter is unchanged.
//!
//! A hit costs one single-row query instead of reading and serialising every row; the
//! counter is bumped by a trigger on `files` in the writer's transaction, so a page is never
//! served after a change to `files` has committed (whichever task made it).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Pages kept per task; a burst of distinct (limit, offset) pairs beyond it empties the cache.
const MAX_PAGES: usize = 256;

#[derive(Default)]
pub struct ListCache {
    inner: Mutex<Pages>,
}

#[derive(Default)]
struct Pages {
    version: i64,
    pages: HashMap<(i64, i64), Bytes>,
}

impl ListCache {
    /// The page rendered at `version`, if any.
    pub fn get(&self, version: i64, key: (i64, i64)) -> Option<Bytes> {
        let pages = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if pages.version == version {
            pages.pages.get(&key).cloned()
        } else {
            None
        }
    }

    /// Keep a page rendered at `version` (older than what the cache holds: dropped).
    pub fn put(&self, version: i64, key: (i64, i64), body: Bytes) {
        let mut pages = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if version > pages.version {
            pages.version = version;
            pages.pages.clear();
        }
        if version == pages.version {
            if pages.pages.len() >= MAX_PAGES {
                pages.pages.clear();
            }
            pages.pages.insert(key, body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_served_only_at_their_version() {
        let cache = ListCache::default();
        cache.put(3, (50, 0), Bytes::from_static(b"v3"));
        assert_eq!(cache.get(3, (50, 0)).as_deref(), Some(&b"v3"[..]));
        assert_eq!(cache.get(4, (50, 0)), None);
        assert_eq!(cache.get(3, (10, 0)), None);
        // A late writer of an older version does not replace newer pages.
        cache.put(4, (50, 0), Bytes::from_static(b"v4"));
        cache.put(3, (50, 0), Bytes::from_static(b"v3"));
        assert_eq!(cache.get(4, (50, 0)).as_deref(), Some(&b"v4"[..]));
    }
}
