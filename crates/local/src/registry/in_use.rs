//! Which images running processes use, so the lifecycle never removes them.
//!
//! A task runs its image's snapshot (`.berth/registry/<repo>/<digest>/...`) directly, or
//! through an interpreter that names it on its command line; either way the digest is a
//! component of a path in `/proc/<pid>/exe` or `/proc/<pid>/cmdline`.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::digest::is_digest;

/// The digests the processes `pids` run from. `None` when a live process cannot be
/// inspected: the caller must then assume any image may be in use.
pub fn digests_in_use(pids: impl IntoIterator<Item = u32>) -> Option<HashSet<String>> {
    let mut digests = HashSet::new();
    for pid in pids {
        let proc_dir = format!("/proc/{pid}");
        if !Path::new(&proc_dir).exists() {
            continue; // gone: uses nothing
        }
        let exe = fs::read_link(format!("{proc_dir}/exe")).ok()?;
        collect(&exe.to_string_lossy(), &mut digests);
        let cmdline = fs::read(format!("{proc_dir}/cmdline")).ok()?;
        for arg in cmdline.split(|&b| b == 0) {
            collect(&String::from_utf8_lossy(arg), &mut digests);
        }
    }
    Some(digests)
}

fn collect(path: &str, digests: &mut HashSet<String>) {
    for component in path.split('/') {
        if is_digest(component) {
            digests.insert(component.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_digests_in_paths() {
        let mut found = HashSet::new();
        let digest = format!("sha256:{}", "a".repeat(64));
        collect(
            &format!("/srv/.berth/registry/repo/{digest}/app"),
            &mut found,
        );
        collect("/usr/bin/sh", &mut found);
        assert_eq!(found, HashSet::from([digest]));
    }

    #[test]
    fn our_own_process_uses_no_image_and_dead_pids_are_skipped() {
        let found = digests_in_use([std::process::id(), 99_999_999]).unwrap();
        assert!(found.is_empty());
    }
}
