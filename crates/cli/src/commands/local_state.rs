//! The local environment's state directory, shared by the verbs that read or write it
//! (`build`, `images`, `param`, `logs`).

use anyhow::{Context as _, anyhow};
use berth_local::state_dir::StateDir;
use berth_spec::Stack;

use crate::context::Context;
use crate::error::CliError;

/// `.berth/` (the local environment's `state_dir`) of the stack, created when missing.
/// These verbs act on the embedded runtime: an AWS environment is a usage error.
pub fn open(cx: &Context, stack: &Stack, verb: &str) -> Result<StateDir, CliError> {
    let environment = cx.environment(stack)?;
    let local = environment.as_local().ok_or_else(|| {
        CliError::Usage(anyhow!(
            "`berth {verb}` works on the local runtime; environment `{}` runs on AWS",
            environment.name
        ))
    })?;
    let state = StateDir::at(stack.root.join(&local.state_dir));
    state
        .ensure()
        .with_context(|| format!("cannot prepare {}", state.root().display()))?;
    Ok(state)
}

/// A short digest for tables: `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> &str {
    let end = "sha256:".len() + 12;
    digest.get(..end).unwrap_or(digest)
}

/// Bytes as people read them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_digests() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("short"), "short");
    }
}
