use std::collections::BTreeMap;

use serde::Serialize;

/// `[ci.github]`: the GitHub Actions workflows `berth ci github` writes, and the roles they
/// assume through GitHub's OIDC provider (no long-lived access keys, unlike the seed's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GithubCi {
    /// `owner/name`: the only repository whose workflows may assume the roles. Without it
    /// the workflows are written, but `berth up` creates no role for them to assume (a
    /// shared file, such as the example, names no repository: whoever owned a placeholder's
    /// name could deploy into the account of anyone who used the file as it is).
    pub repository: Option<String>,
    /// Pushes to this branch deploy; pull requests into it get a plan.
    pub branch: String,
    /// The AWS environment the workflows deploy to.
    pub environment: String,
    /// Assumed by the deploy workflows (pushes to `branch` only).
    pub deploy_role: String,
    /// Assumed by the pull-request workflow to run `berth plan` (read-only).
    pub plan_role: String,
    /// The shell command that puts `berth` (built with the `aws` feature) on the runner's PATH.
    pub install: String,
    /// The runner label.
    pub runs_on: String,
    /// Per service: the paths (relative to the repository root, GitHub's glob syntax) whose
    /// changes deploy it. A service not listed here deploys on changes to its build context.
    pub paths: BTreeMap<String, Vec<String>>,
}
