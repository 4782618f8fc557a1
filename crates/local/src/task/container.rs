//! A task that runs as a container: the engine's `run` in the foreground is the task's
//! process (its stdout and stderr are the container's, its exit code the container's), so the
//! supervisor, the log streams and the scheduler treat both kinds alike. What differs is
//! here: the `run` arguments (ECS's meaning: the container port published on the task's
//! loopback port, `--cpus` and `--memory` from the task size), the stop (the engine's `stop`:
//! SIGTERM to the container, SIGKILL after the stop timeout), the exit (OOM read from the
//! engine, then the container removed) and the health check (run inside the container, as
//! ECS runs it).
//!
//! Secrets are never on the command line nor in `inspect` output where the engine allows it.
//! With podman, each becomes an engine secret for the task's life ([`ContainerRun::hold_secrets`]:
//! the value through `secret create`'s stdin), mounted as a file only the image's user reads,
//! and a `/bin/sh` wrapper exports it before exec'ing the image's own command. Not podman's
//! `type=env` secrets: podman 4.3 shows their values in `inspect`'s `Config.Env`, as it shows
//! every `--env`. docker has no secrets outside swarm: there `--env NAME` without a value
//! makes the engine read it from its own environment, where berth puts it (the engine client's
//! environment is readable only by its owner, as a process task's is); `docker inspect` shows
//! it.

use std::time::Duration;

use berth_spec::rules::env_name_ok;
use sha2::{Digest as _, Sha256};

use crate::engine::{Engine, EngineError, EngineKind};

use super::{SecretValue, TASK_HOST, TaskSpec};

/// The label every container berth starts carries, with the state directory as value: a
/// later berth of the same stack finds and removes what a killed one left.
pub const STATE_LABEL: &str = "berth.state";

/// ECS's reason for a container the kernel killed for its memory limit (exit code 137).
pub const OUT_OF_MEMORY: &str = "OutOfMemoryError: Container killed due to memory usage";

/// How a container's port reaches the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerNetwork {
    /// ECS's meaning: the app listens on its container port inside the container's own
    /// network, published on the task's loopback port.
    Publish,
    /// The host's network, like a process task: the app listens on the task's port on
    /// 127.0.0.1 (`PORT`, `HOST`), and reaches what the stack runs on loopback (its
    /// PostgreSQL, the balancer), which a container's own network cannot.
    Host,
}

/// How a task runs as a container instead of a process.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    pub engine: Engine,
    /// The image reference (`localhost/backend-repo:latest`) or id.
    pub image: String,
    /// The port the container listens on (the stack's `port`); published on the task's port.
    pub container_port: u16,
    pub network: ContainerNetwork,
    /// The task's CPU units (1024 = 1 vCPU), enforced with `--cpus`.
    pub cpu_units: u32,
    /// The task's memory (MiB), enforced with `--memory` (no swap on top).
    pub memory_mib: u32,
    /// `berth.state=<state dir>` and the service's name.
    pub labels: Vec<(String, String)>,
    /// The container's name (unique per task).
    pub name: String,
    /// The task's secrets as engine secrets (podman), once [`ContainerRun::hold_secrets`]
    /// made them; `None`: secrets go as `--env NAME`.
    pub engine_secrets: Option<EngineSecrets>,
}

/// A task's secrets held by the engine (podman), and how the container reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSecrets {
    /// `(variable, engine secret name)`.
    pub names: Vec<(String, String)>,
    /// What the wrapper execs: the image's entrypoint, then the task's args or else the
    /// image's command (docker's rule for a run that overrides the entrypoint).
    pub command: Vec<String>,
    /// The mount's owner and mode: the image's numeric `USER`, mode 0400; a `USER` given by
    /// name (berth cannot resolve it outside the image) gets mode 0444, readable by the
    /// container's processes only.
    pub mount_options: String,
}

/// Why a task's secrets could not be handed to the engine.
#[derive(Debug, thiserror::Error)]
pub enum SecretHandoffError {
    #[error("secret variable {0:?} is not a shell variable name")]
    BadName(String),
    #[error("cannot read the entrypoint and command of image {image}")]
    Image {
        image: String,
        #[source]
        source: EngineError,
    },
    #[error("cannot create the engine secret for {variable}")]
    Create {
        variable: String,
        #[source]
        source: EngineError,
    },
}

/// The prefix of every engine secret a berth of the stack whose state directory is `state`
/// makes: recovery after a killed berth removes what starts with it (podman 4.3 cannot
/// filter secrets by label).
pub fn engine_secret_prefix(state: &str) -> String {
    format!("berth-secret-{}-", short_hash(state, 12))
}

/// The engine secret of one task's variable: the prefix, then a hash of the container and
/// the variable (podman's names have at most 64 characters).
fn engine_secret_name(prefix: &str, container: &str, variable: &str) -> String {
    format!(
        "{prefix}{}",
        short_hash(&format!("{container}/{variable}"), 24)
    )
}

fn short_hash(text: &str, digits: usize) -> String {
    let mut digest = hex::encode(Sha256::digest(text.as_bytes()));
    digest.truncate(digits);
    digest
}

impl ContainerRun {
    /// The engine's `run` arguments (after the program); secrets appear by name only.
    pub(super) fn run_args(&self, spec: &TaskSpec, host_port: u16) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--name", &self.name]
            .into_iter()
            .map(String::from)
            .collect();
        for (key, value) in &self.labels {
            args.push("--label".into());
            args.push(format!("{key}={value}"));
        }
        let cpus = f64::from(self.cpu_units) / 1024.0;
        let (port, host) = match self.network {
            ContainerNetwork::Publish => {
                args.push("--publish".into());
                args.push(format!("{TASK_HOST}:{host_port}:{}", self.container_port));
                // A non-root app may listen on port 80 in its own network, as under docker
                // (which sets this by default) and on ECS; podman keeps the kernel's 1024.
                args.push("--sysctl".into());
                args.push("net.ipv4.ip_unprivileged_port_start=0".into());
                (self.container_port, "0.0.0.0")
            }
            ContainerNetwork::Host => {
                args.extend(["--network".into(), "host".into()]);
                (host_port, TASK_HOST)
            }
        };
        args.extend([
            "--cpus".into(),
            format!("{cpus}"),
            "--memory".into(),
            format!("{}m", self.memory_mib),
            // Memory + swap = memory: over its limit the container is killed, not swapped.
            "--memory-swap".into(),
            format!("{}m", self.memory_mib),
            // berth runs the task definition's check itself (inside the container); the
            // image's own HEALTHCHECK would need systemd timers here and is not ECS's.
            "--no-healthcheck".into(),
            "--stop-signal".into(),
            "SIGTERM".into(),
        ]);
        for (name, value) in &spec.env {
            args.push("--env".into());
            args.push(format!("{name}={value}"));
        }
        match &self.engine_secrets {
            Some(held) => {
                for (variable, name) in &held.names {
                    args.push("--secret".into());
                    args.push(format!(
                        "{name},type=mount,target={variable},{}",
                        held.mount_options
                    ));
                }
                // An empty value cannot be an engine secret (podman refuses it) and hides
                // nothing.
                for (name, _) in spec.secrets.iter().filter(|(_, v)| v.expose().is_empty()) {
                    args.push("--env".into());
                    args.push(format!("{name}="));
                }
                args.push("--entrypoint".into());
                args.push(held.entrypoint());
            }
            None => {
                for (name, _) in &spec.secrets {
                    args.push("--env".into());
                    args.push(name.clone());
                }
            }
        }
        // What the runtime decides, last so it wins: published, the app listens on its
        // container port on every interface of the container's network (the publish keeps it
        // on loopback here); on the host's network, on the task's port on loopback.
        args.extend([
            "--env".into(),
            format!("PORT={port}"),
            "--env".into(),
            format!("HOST={host}"),
        ]);
        args.push(self.image.clone());
        match &self.engine_secrets {
            Some(held) => args.extend(held.command.iter().cloned()),
            None => args.extend(spec.args.iter().cloned()),
        }
        args
    }

    /// With podman, makes each of the task's secrets an engine secret (its value through
    /// stdin, labelled with the state directory, named after [`engine_secret_prefix`]) and
    /// records how the container reads them; with docker, or without secrets, nothing. On an
    /// error the secrets made so far are removed.
    pub async fn hold_secrets(
        &mut self,
        args: &[String],
        secrets: &[(String, SecretValue)],
    ) -> Result<(), SecretHandoffError> {
        if secrets.is_empty() || self.engine.kind != EngineKind::Podman {
            return Ok(());
        }
        if let Some((bad, _)) = secrets.iter().find(|(name, _)| !env_name_ok(name)) {
            return Err(SecretHandoffError::BadName(bad.clone()));
        }
        let (command, mount_options) = self.image_command(args).await?;
        let state = self.state_label().unwrap_or_default().to_owned();
        let prefix = engine_secret_prefix(&state);
        let mut held = EngineSecrets {
            names: Vec::new(),
            command,
            mount_options,
        };
        for (variable, value) in secrets.iter().filter(|(_, v)| !v.expose().is_empty()) {
            let name = engine_secret_name(&prefix, &self.name, variable);
            let label = format!("{STATE_LABEL}={state}");
            let created = self
                .engine
                .output_with_input(
                    &["secret", "create", "--label", &label, &name, "-"],
                    Some(value.expose().as_bytes()),
                )
                .await;
            if let Err(source) = created {
                remove_secrets(&self.engine, held.names.iter().map(|(_, n)| n.as_str())).await;
                return Err(SecretHandoffError::Create {
                    variable: variable.clone(),
                    source,
                });
            }
            held.names.push((variable.clone(), name));
        }
        self.engine_secrets = Some(held);
        Ok(())
    }

    /// The image's entrypoint followed by `args` (or else its command), and the secret
    /// mounts' owner and mode from its `USER`.
    async fn image_command(
        &self,
        args: &[String],
    ) -> Result<(Vec<String>, String), SecretHandoffError> {
        let image_error = |source| SecretHandoffError::Image {
            image: self.image.clone(),
            source,
        };
        let format = "{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}\t{{.Config.User}}";
        let output = self
            .engine
            .output(&["image", "inspect", "--format", format, &self.image])
            .await
            .map_err(image_error)?;
        let mut fields = output.trim_end_matches('\n').splitn(3, '\t');
        let mut list = |what: &str| -> Result<Vec<String>, SecretHandoffError> {
            let field = fields.next().unwrap_or("null");
            serde_json::from_str::<Option<Vec<String>>>(field)
                .map(Option::unwrap_or_default)
                .map_err(|_| {
                    image_error(EngineError::BadOutput {
                        program: self.engine.program.clone(),
                        verb: format!("image inspect ({what})"),
                        output: output.clone(),
                    })
                })
        };
        let mut command = list("entrypoint")?;
        let image_cmd = list("command")?;
        let user = fields.next().unwrap_or_default().trim();
        command.extend(if args.is_empty() {
            image_cmd
        } else {
            args.to_vec()
        });
        Ok((command, mount_options(user)))
    }

    /// Makes sure the engine holds the image, pulling it when it does not (as ECS pulls before
    /// it starts a task, bounded by [`PULL_TIMEOUT`]). The error is ECS's
    /// `CannotPullContainerError` with the engine's own last word.
    pub(super) async fn ensure_image(&self) -> Result<(), String> {
        if let Ok(Some(_)) = self.engine.image_id(&self.image).await {
            return Ok(());
        }
        let pulled = tokio::time::timeout(
            PULL_TIMEOUT,
            self.engine.output(&["pull", "--quiet", &self.image]),
        )
        .await;
        let why = match pulled {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(EngineError::Failed { stderr, .. })) => last_error(&stderr).to_owned(),
            Ok(Err(error)) => crate::error_chain(&error),
            Err(_) => format!("no answer within {} s", PULL_TIMEOUT.as_secs()),
        };
        Err(format!(
            "CannotPullContainerError: pull image {}: {why}",
            self.image
        ))
    }

    fn state_label(&self) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == STATE_LABEL)
            .map(|(_, value)| value.as_str())
    }

    /// `stop --time <s> <name>`: the engine sends SIGTERM, then SIGKILL after the timeout.
    pub(super) async fn stop(&self, timeout: Duration) {
        let seconds = timeout.as_secs().max(1).to_string();
        if let Err(error) = self
            .engine
            .output(&["stop", "--time", &seconds, &self.name])
            .await
        {
            tracing::debug!(%error, container = %self.name, "engine stop failed");
        }
    }

    /// After the `run` client exited: whether the kernel killed the container for its memory
    /// and its exit code, then the container removed. `None` when the engine no longer knows it.
    pub(super) async fn finish(&self) -> Option<(bool, i32)> {
        let state = self
            .engine
            .output(&[
                "inspect",
                "--format",
                "{{.State.Running}} {{.State.OOMKilled}} {{.State.ExitCode}}",
                &self.name,
            ])
            .await
            .ok();
        self.remove().await;
        let state = state?;
        let mut fields = state.split_whitespace();
        // Still running: the `run` client died alone (killed); its status is the task's, and
        // the container has just been removed with it.
        if fields.next()? == "true" {
            return None;
        }
        let oom = fields.next()? == "true";
        Some((oom, fields.next()?.parse().ok()?))
    }

    /// Removes the container, running or not, then its engine secrets.
    pub(super) async fn remove(&self) {
        if let Err(error) = self.engine.output(&["rm", "--force", &self.name]).await {
            tracing::debug!(%error, container = %self.name, "engine rm failed");
        }
        self.remove_secrets().await;
    }

    /// Removes the task's engine secrets (also when its container never started).
    pub(super) async fn remove_secrets(&self) {
        if let Some(held) = &self.engine_secrets {
            remove_secrets(&self.engine, held.names.iter().map(|(_, n)| n.as_str())).await;
        }
    }

    /// The argv that runs a health-check command inside the container.
    pub(super) fn exec_argv(&self, command: &str) -> Vec<String> {
        vec![
            self.engine.program.display().to_string(),
            "exec".into(),
            self.name.clone(),
            "/bin/sh".into(),
            "-c".into(),
            command.into(),
        ]
    }
}

impl EngineSecrets {
    /// `--entrypoint` as JSON: `/bin/sh -c` exports each mounted secret, then execs the
    /// image's command (`"$@"`). Variable names are checked, so the script is only them.
    fn entrypoint(&self) -> String {
        let mut script = String::new();
        for (variable, _) in &self.names {
            script.push_str(&format!(
                "{variable}=\"$(cat /run/secrets/{variable})\" && export {variable} && "
            ));
        }
        script.push_str("exec \"$@\"");
        serde_json::json!(["/bin/sh", "-c", script, "berth-secrets"]).to_string()
    }
}

/// How long a task waits for its image to be pulled before it fails to start.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// The engine's final error in its stderr tail (whose lines are joined by ` | `): podman
/// prints its retries as warnings before it.
fn last_error(stderr: &str) -> &str {
    let last = stderr.rsplit(" | ").next().unwrap_or(stderr);
    last.strip_prefix("Error: ").unwrap_or(last)
}

/// The secret mounts' owner and mode for an image's `USER` (`uid[:gid]`, a name, or empty
/// for root).
fn mount_options(user: &str) -> String {
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (uid, gid) {
        ("", _) => "mode=0400".to_owned(),
        (uid, "") if numeric(uid) => format!("uid={uid},mode=0400"),
        (uid, gid) if numeric(uid) && numeric(gid) => format!("uid={uid},gid={gid},mode=0400"),
        _ => "mode=0444".to_owned(),
    }
}

async fn remove_secrets<'a>(engine: &Engine, names: impl Iterator<Item = &'a str>) {
    let mut args = vec!["secret", "rm"];
    args.extend(names);
    if args.len() == 2 {
        return;
    }
    if let Err(error) = engine.output(&args).await {
        tracing::warn!(%error, "engine secret rm failed");
    }
}

/// The kernel's count of OOM kills since boot (`oom_kill` in `/proc/vmstat`).
pub(super) fn kernel_oom_kills() -> Option<u64> {
    let vmstat = std::fs::read_to_string("/proc/vmstat").ok()?;
    vmstat
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// Whether a container the engine does not report as OOM-killed was killed for its memory
/// all the same. podman with runc on cgroup v1 (these machines) always reports
/// `OOMKilled=false`; the kernel's own count tells: a container that died of SIGKILL (137)
/// that berth did not send, while the kernel's OOM kill count rose, was killed by the OOM
/// killer (its memory limit is the only one a task has).
pub(super) fn killed_by_the_kernel(
    exit_code: i32,
    stopped_by_berth: bool,
    at_start: Option<u64>,
) -> bool {
    exit_code == 137
        && !stopped_by_berth
        && at_start
            .zip(kernel_oom_kills())
            .is_some_and(|(before, now)| now > before)
}

/// Removes every container labelled with `state` (a killed berth's), then, with podman, the
/// engine secrets named after [`engine_secret_prefix`]; returns how many containers.
pub async fn remove_leftovers(engine: &Engine, state: &str) -> Result<usize, EngineError> {
    let filter = format!("label={STATE_LABEL}={state}");
    let ids = engine
        .output(&["ps", "--all", "--quiet", "--filter", &filter])
        .await?;
    let ids: Vec<&str> = ids
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "--force"];
        args.extend(ids.iter().copied());
        engine.output(&args).await?;
    }
    if engine.kind == EngineKind::Podman {
        let prefix = engine_secret_prefix(state);
        let names = engine
            .output(&["secret", "ls", "--noheading", "--format", "{{.Name}}"])
            .await?;
        let mut args = vec!["secret", "rm"];
        args.extend(
            names
                .lines()
                .map(str::trim)
                .filter(|n| n.starts_with(&prefix)),
        );
        if args.len() > 2 {
            engine.output(&args).await?;
        }
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineKind;
    use crate::task::SecretValue;

    #[test]
    fn run_args_publish_limit_and_keep_secrets_off_the_command_line() {
        let run = ContainerRun {
            engine: Engine {
                kind: EngineKind::Podman,
                program: "/usr/bin/podman".into(),
            },
            image: "localhost/backend-repo:latest".into(),
            container_port: 3001,
            network: ContainerNetwork::Publish,
            cpu_units: 512,
            memory_mib: 1024,
            labels: vec![(STATE_LABEL.into(), "/s/.berth".into())],
            name: "berth-abc".into(),
            engine_secrets: None,
        };
        let mut spec = TaskSpec::new("/unused");
        spec.env = vec![("MAX".into(), "10".into())];
        spec.secrets = vec![("DB_PASSWORD".into(), SecretValue::new("hunter2"))];
        spec.args = vec!["--verbose".into()];
        // Without engine secrets (docker): the variable by name, its value from the client's
        // environment.
        let args = run.run_args(&spec, 40123).join(" ");
        assert_eq!(
            args,
            "run --name berth-abc --label berth.state=/s/.berth \
             --publish 127.0.0.1:40123:3001 --sysctl net.ipv4.ip_unprivileged_port_start=0 --cpus 0.5 --memory 1024m --memory-swap 1024m \
             --no-healthcheck --stop-signal SIGTERM --env MAX=10 --env DB_PASSWORD \
             --env PORT=3001 --env HOST=0.0.0.0 localhost/backend-repo:latest --verbose"
        );
        assert!(!args.contains("hunter2"));
        // With podman's secrets: a mount only the image's user reads, and a wrapper that
        // exports it before exec'ing the image's entrypoint with the task's args.
        let held = ContainerRun {
            engine_secrets: Some(EngineSecrets {
                names: vec![(
                    "DB_PASSWORD".into(),
                    "berth-secret-0123-berth-abc-DB_PASSWORD".into(),
                )],
                command: vec!["/usr/local/bin/api".into(), "--verbose".into()],
                mount_options: mount_options("10001:10001"),
            }),
            ..run.clone()
        };
        let argv = held.run_args(&spec, 40123);
        let args = argv.join(" ");
        assert!(
            args.contains(
                "--secret berth-secret-0123-berth-abc-DB_PASSWORD,type=mount,target=DB_PASSWORD,uid=10001,gid=10001,mode=0400"
            ),
            "{args}"
        );
        assert!(!args.contains("--env DB_PASSWORD"), "{args}");
        assert!(!args.contains("hunter2"), "{args}");
        let entrypoint = &argv[argv.iter().position(|a| a == "--entrypoint").unwrap() + 1];
        assert_eq!(
            serde_json::from_str::<Vec<String>>(entrypoint).unwrap(),
            [
                "/bin/sh",
                "-c",
                "DB_PASSWORD=\"$(cat /run/secrets/DB_PASSWORD)\" && export DB_PASSWORD && exec \"$@\"",
                "berth-secrets"
            ]
        );
        assert!(
            args.ends_with("localhost/backend-repo:latest /usr/local/bin/api --verbose"),
            "{args}"
        );

        let host = ContainerRun {
            network: ContainerNetwork::Host,
            ..run
        };
        let args = host.run_args(&spec, 40123).join(" ");
        assert!(
            args.contains("--network host") && !args.contains("--publish"),
            "{args}"
        );
        assert!(
            args.ends_with(
                "--env PORT=40123 --env HOST=127.0.0.1 localhost/backend-repo:latest --verbose"
            ),
            "{args}"
        );
    }

    #[test]
    fn secret_mounts_belong_to_the_images_numeric_user() {
        assert_eq!(mount_options(""), "mode=0400");
        assert_eq!(mount_options("10001"), "uid=10001,mode=0400");
        assert_eq!(
            mount_options("10001:10002"),
            "uid=10001,gid=10002,mode=0400"
        );
        assert_eq!(mount_options("app"), "mode=0444");
        assert_eq!(mount_options("10001:app"), "mode=0444");
    }

    #[test]
    fn engine_secret_names_are_tied_to_the_state_directory() {
        let a = engine_secret_prefix("/a/.berth");
        assert!(a.starts_with("berth-secret-") && a.ends_with('-'), "{a}");
        assert_eq!(a, engine_secret_prefix("/a/.berth"));
        assert_ne!(a, engine_secret_prefix("/b/.berth"));
        let name = engine_secret_name(&a, &format!("berth-{}", "f".repeat(32)), "DB_PASSWORD");
        assert!(name.starts_with(&a) && name.len() <= 64, "{name}");
        assert_ne!(name, engine_secret_name(&a, "berth-other", "DB_PASSWORD"));
    }
}
