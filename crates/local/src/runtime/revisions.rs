//! Task-definition revision numbers, kept in `.berth/revisions.json` so that `<family>:<n>`
//! goes on counting across berth restarts: ECS never reuses a revision number, and a
//! deployment history that restarted at `:1` would name two different releases alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::state_dir::{FsError, StateDir, write_private_file_atomic};

/// The last revision registered per family.
pub struct RevisionNumbers {
    path: PathBuf,
    last: Mutex<BTreeMap<String, u32>>,
}

impl RevisionNumbers {
    /// Reads the numbers kept in `state`; a missing or unreadable file starts from zero (the
    /// numbers then restart, which loses nothing but the continuity of names).
    pub fn open(state: &StateDir) -> Self {
        let path = state.root().join("revisions.json");
        let last = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "revision numbers unreadable: starting again at 1");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self {
            path,
            last: Mutex::new(last),
        }
    }

    /// Registers the next revision of `family` and returns its number (1 for a new family).
    pub fn next(&self, family: &str) -> Result<u32, FsError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let n = last.get(family).copied().unwrap_or(0) + 1;
        last.insert(family.to_owned(), n);
        let bytes = serde_json::to_vec_pretty(&*last).unwrap_or_default();
        write_private_file_atomic(&self.path, &bytes)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_go_on_across_openings() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::at(dir.path());
        let numbers = RevisionNumbers::open(&state);
        assert_eq!(numbers.next("web-task").unwrap(), 1);
        assert_eq!(numbers.next("web-task").unwrap(), 2);
        assert_eq!(numbers.next("api-task").unwrap(), 1);
        let again = RevisionNumbers::open(&state);
        assert_eq!(again.next("web-task").unwrap(), 3);
        assert_eq!(again.next("api-task").unwrap(), 2);
    }
}
