//! Pushing an image from the engine's store to a registry (`berth build --push`).
//!
//! The registry's password goes to the engine's `login --password-stdin` on standard input,
//! never on a command line (where `ps` shows it) nor in a log. The login is written to an
//! auth file of its own in a private directory (0700) that is removed when the push ends, so
//! the token (valid 12 hours for ECR) is not left in the user's engine configuration.

use std::path::{Path, PathBuf};

use super::{Engine, EngineError, EngineKind};
use crate::params::SecretString;
use crate::registry::is_digest;
use crate::state_dir::create_private_dir;

/// Who to log in as, where.
pub struct RegistryLogin<'a> {
    /// The registry host (`<account>.dkr.ecr.<region>.amazonaws.com`, `127.0.0.1:5000`).
    pub registry: &'a str,
    pub username: &'a str,
    pub password: &'a SecretString,
}

/// A private directory removed on drop: the push's auth file lives there.
struct AuthDir(PathBuf);

impl Drop for AuthDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Engine {
    /// Logs in to `login.registry`, tags `local` as `remote` and pushes it; returns the
    /// digest of the manifest the registry stored (`sha256:…`).
    pub async fn push(
        &self,
        local: &str,
        remote: &str,
        login: &RegistryLogin<'_>,
    ) -> Result<String, EngineError> {
        let dir =
            AuthDir(std::env::temp_dir().join(format!("berth-push-{}", uuid::Uuid::new_v4())));
        create_private_dir(&dir.0).map_err(|e| EngineError::Spawn {
            program: self.program.clone(),
            verb: "login".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        self.run(
            &dir.0,
            &[
                "login",
                "--username",
                login.username,
                "--password-stdin",
                login.registry,
            ],
            Some(login.password.expose().as_bytes()),
        )
        .await?;
        self.run(&dir.0, &["tag", local, remote], None).await?;
        let digest_file = dir.0.join("digest");
        let digest_arg = digest_file.display().to_string();
        let out = match self.kind {
            EngineKind::Podman => {
                self.run(&dir.0, &["push", "--digestfile", &digest_arg, remote], None)
                    .await?
            }
            EngineKind::Docker => self.run(&dir.0, &["push", remote], None).await?,
        };
        let digest = match self.kind {
            EngineKind::Podman => std::fs::read_to_string(&digest_file).unwrap_or_default(),
            EngineKind::Docker => docker_digest(&out).unwrap_or_default().to_owned(),
        };
        let digest = digest.trim();
        if !is_digest(digest) {
            return Err(EngineError::BadOutput {
                program: self.program.clone(),
                verb: "push".into(),
                output: format!("no digest for {remote} (read {digest:?})"),
            });
        }
        Ok(digest.to_owned())
    }

    /// Runs `<engine> args…` with the auth file in `dir`, `stdin` written to its input.
    async fn run(
        &self,
        dir: &Path,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<String, EngineError> {
        let auth_file = dir.join("auth.json");
        let env: [(&str, &std::ffi::OsStr); 1] = match self.kind {
            EngineKind::Podman => [("REGISTRY_AUTH_FILE", auth_file.as_os_str())],
            EngineKind::Docker => [("DOCKER_CONFIG", dir.as_os_str())],
        };
        self.output_with_env(args, stdin, &env).await
    }
}

/// docker push's last line: `<tag>: digest: sha256:… size: N`.
fn docker_digest(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .find_map(|line| line.split_once("digest: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_read_from_docker_output_and_checked() {
        let hex = "a".repeat(64);
        let out = format!(
            "The push refers to repository [x]\nabc: Pushed\nsha1: digest: sha256:{hex} size: 528\n"
        );
        assert_eq!(docker_digest(&out), Some(format!("sha256:{hex}").as_str()));
        assert!(is_digest(&format!("sha256:{hex}")));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(&format!("sha512:{hex}")));
        assert_eq!(docker_digest("nothing"), None);
    }
}
