//! The container engine (docker or podman), driven through its command line.
//!
//! Both engines accept the same `build`, `images`, `image inspect`, `rmi` and `run` verbs
//! for what berth uses, so one `Engine` with a [`EngineKind`] for the few differences
//! (podman needs `--format docker` to keep a `HEALTHCHECK`) drives either. Which engine:
//! `BERTH_CONTAINER_ENGINE` (`docker`, `podman`, a path to either, or `none` for no engine),
//! else the first of podman and docker on `PATH`; it must answer, or it is an error (a
//! broken engine is reported, never silently replaced by processes).

mod images;
mod push;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

pub use images::{EngineImage, ImageBuildRequest, LOCAL_REGISTRY, build_args, iidfile, local_name};
pub use push::RegistryLogin;

/// The variable that chooses the engine.
pub const ENGINE_VARIABLE: &str = "BERTH_CONTAINER_ENGINE";

/// How many bytes of an engine's error output an error keeps.
const STDERR_KEEP: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }
}

/// An engine found on this machine and answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: EngineKind,
    pub program: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no container engine found: install podman or docker, or set {ENGINE_VARIABLE} to one")]
    NotFound,
    #[error("{ENGINE_VARIABLE}={value:?} names neither docker nor podman (nor `none`)")]
    UnknownChoice { value: String },
    #[error("{ENGINE_VARIABLE} names {}, which does not exist or is not executable", program.display())]
    ChosenMissing { program: PathBuf },
    #[error("{kind} ({}) is installed but not running: {stderr}", program.display(), kind = kind.name())]
    NotRunning {
        kind: EngineKind,
        program: PathBuf,
        stderr: String,
    },
    #[error("cannot run `{} {verb}`", program.display())]
    Spawn {
        program: PathBuf,
        verb: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{} {verb}` failed: {stderr}", program.display())]
    Failed {
        program: PathBuf,
        verb: String,
        stderr: String,
    },
    #[error("`{} {verb}` printed output berth cannot read: {output}", program.display())]
    BadOutput {
        program: PathBuf,
        verb: String,
        output: String,
    },
}

impl Engine {
    /// The engine `BERTH_CONTAINER_ENGINE` names, or the first of podman and docker found on
    /// `PATH`; checked to be answering (`info`).
    pub async fn detect() -> Result<Engine, EngineError> {
        let choice = std::env::var_os(ENGINE_VARIABLE).filter(|v| !v.is_empty());
        let engine = match choice {
            Some(value) => chosen(Path::new(&value))?,
            None => [EngineKind::Podman, EngineKind::Docker]
                .into_iter()
                .find_map(|kind| find_on_path(kind.name()).map(|program| Engine { kind, program }))
                .ok_or(EngineError::NotFound)?,
        };
        engine.check_running().await?;
        Ok(engine)
    }

    /// Whether an engine is usable here: `Ok(None)` when none is installed or
    /// `BERTH_CONTAINER_ENGINE=none`, an error when one is chosen or installed but not
    /// answering (a broken engine is not silently replaced by processes).
    pub async fn available() -> Result<Option<Engine>, EngineError> {
        if std::env::var_os(ENGINE_VARIABLE).is_some_and(|v| v == "none") {
            return Ok(None);
        }
        match Engine::detect().await {
            Ok(engine) => Ok(Some(engine)),
            Err(EngineError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Asks the engine's service something only a running one answers.
    async fn check_running(&self) -> Result<(), EngineError> {
        let question: &[&str] = match self.kind {
            EngineKind::Podman => &["info", "--format", "{{.Host.Arch}}"],
            EngineKind::Docker => &["version", "--format", "{{.Server.Version}}"],
        };
        match self.output(question).await {
            Ok(_) => Ok(()),
            Err(EngineError::Failed { stderr, .. }) => Err(EngineError::NotRunning {
                kind: self.kind,
                program: self.program.clone(),
                stderr,
            }),
            Err(e) => Err(e),
        }
    }

    /// Runs `<engine> args...`, returning stdout; a non-zero exit is
    /// [`EngineError::Failed`] with the end of stderr.
    pub async fn output(&self, args: &[&str]) -> Result<String, EngineError> {
        self.output_with_input(args, None).await
    }

    /// [`Engine::output`] with `input` written to the engine's stdin (a secret's value,
    /// which must never be an argument).
    pub async fn output_with_input(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<String, EngineError> {
        self.output_with_env(args, input, &[]).await
    }

    /// [`Engine::output_with_input`] with extra environment variables for the engine (where a
    /// push finds its private auth file).
    pub(crate) async fn output_with_env(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Result<String, EngineError> {
        use tokio::io::AsyncWriteExt as _;
        let verb = args.first().copied().unwrap_or_default().to_owned();
        let spawn_error = |source| EngineError::Spawn {
            program: self.program.clone(),
            verb: verb.clone(),
            source,
        };
        let mut child = Command::new(&self.program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // Dropped at the end of this block: the engine sees end of input.
            stdin.write_all(input).await.map_err(spawn_error)?;
        }
        let output = child.wait_with_output().await.map_err(spawn_error)?;
        if !output.status.success() {
            return Err(EngineError::Failed {
                program: self.program.clone(),
                verb,
                stderr: stderr_tail(&output.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// What a service's tasks run from, given whether an engine is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact<'s> {
    /// A container from the service's image (built from its Dockerfile, or a reference).
    Image(&'s berth_spec::Image),
    /// A process from the service's registry snapshot.
    Process(&'s berth_spec::Build),
}

/// The image when the service has one and an engine is present, else its process build;
/// `None` when neither fits (an image-only service without an engine, or no build at all).
pub fn artifact(service: &berth_spec::Service, engine_present: bool) -> Option<Artifact<'_>> {
    match (&service.image, &service.build) {
        (Some(image), _) if engine_present => Some(Artifact::Image(image)),
        (_, Some(build)) => Some(Artifact::Process(build)),
        _ => None,
    }
}

/// The last [`STDERR_KEEP`] bytes of an engine's error output, trimmed, on one line.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).trim().replace('\n', " | ");
    let start = text
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| text.len() - i <= STDERR_KEEP)
        .unwrap_or(0);
    text[start..].to_owned()
}

fn chosen(value: &Path) -> Result<Engine, EngineError> {
    let name = value
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let kind = if name.starts_with("podman") {
        EngineKind::Podman
    } else if name.starts_with("docker") {
        EngineKind::Docker
    } else {
        return Err(EngineError::UnknownChoice {
            value: value.display().to_string(),
        });
    };
    let program = if value.components().count() > 1 {
        Some(value.to_path_buf()).filter(|p| is_executable(p))
    } else {
        find_on_path(name)
    };
    let program = program.ok_or_else(|| EngineError::ChosenMissing {
        program: value.to_path_buf(),
    })?;
    Ok(Engine { kind, program })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_docker_or_podman() {
        assert!(matches!(
            chosen(Path::new("nerdctl")),
            Err(EngineError::UnknownChoice { .. })
        ));
        assert!(matches!(
            chosen(Path::new("/nonexistent/podman")),
            Err(EngineError::ChosenMissing { .. })
        ));
    }

    #[test]
    fn stderr_keeps_the_end_on_one_line() {
        let long = format!("{}\nthe cause", "x".repeat(2000));
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.ends_with("x | the cause"), "{tail}");
        assert!(tail.len() <= STDERR_KEEP);
    }
}
