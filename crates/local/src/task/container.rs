//! A task that runs as a container: the engine's `run` in the foreground is the task's
//! process (its stdout and stderr are the container's, its exit code the container's), so the
//! supervisor, the log streams and the scheduler treat both kinds alike. What differs is
//! here: the `run` arguments (ECS's meaning: the container port published on the task's
//! loopback port, `--cpus` and `--memory` from the task size), the stop (the engine's `stop`:
//! SIGTERM to the container, SIGKILL after the stop timeout), the exit (OOM read from the
//! engine, then the container removed) and the health check (run inside the container, as
//! ECS runs it).
//!
//! Secrets are never on the command line: `--env NAME` without a value makes the engine
//! read it from its own environment, where berth puts it (the engine client's environment
//! is readable only by its owner, as a process task's is).

use std::time::Duration;

use crate::engine::Engine;

use super::{TASK_HOST, TaskSpec};

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
        for (name, _) in &spec.secrets {
            args.push("--env".into());
            args.push(name.clone());
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
        args.extend(spec.args.iter().cloned());
        args
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

    /// Removes the container, running or not.
    pub(super) async fn remove(&self) {
        if let Err(error) = self.engine.output(&["rm", "--force", &self.name]).await {
            tracing::debug!(%error, container = %self.name, "engine rm failed");
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

/// Removes every container labelled with `state` (a killed berth's), returning how many.
pub async fn remove_leftovers(
    engine: &Engine,
    state: &str,
) -> Result<usize, crate::engine::EngineError> {
    let filter = format!("label={STATE_LABEL}={state}");
    let ids = engine
        .output(&["ps", "--all", "--quiet", "--filter", &filter])
        .await?;
    let ids: Vec<&str> = ids
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let mut args = vec!["rm", "--force"];
    args.extend(ids.iter().copied());
    engine.output(&args).await?;
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
        };
        let mut spec = TaskSpec::new("/unused");
        spec.env = vec![("MAX".into(), "10".into())];
        spec.secrets = vec![("DB_PASSWORD".into(), SecretValue::new("hunter2"))];
        let args = run.run_args(&spec, 40123).join(" ");
        assert_eq!(
            args,
            "run --name berth-abc --label berth.state=/s/.berth \
             --publish 127.0.0.1:40123:3001 --sysctl net.ipv4.ip_unprivileged_port_start=0 --cpus 0.5 --memory 1024m --memory-swap 1024m \
             --no-healthcheck --stop-signal SIGTERM --env MAX=10 --env DB_PASSWORD \
             --env PORT=3001 --env HOST=0.0.0.0 localhost/backend-repo:latest"
        );
        assert!(!args.contains("hunter2"));
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
            args.ends_with("--env PORT=40123 --env HOST=127.0.0.1 localhost/backend-repo:latest"),
            "{args}"
        );
    }
}
