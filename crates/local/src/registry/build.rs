//! Running a service's build command, its output streamed line by line and kept in a log file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::state_dir::{self, FsError};

/// How many of the last output lines a failed build reports.
const TAIL_LINES: usize = 20;

/// The build command of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildCommand {
    /// A command line run by `sh -c`.
    Shell(String),
    /// A program and its arguments, run without a shell.
    Exec(Vec<String>),
}

impl std::fmt::Display for BuildCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shell(line) => f.write_str(line),
            Self::Exec(argv) => f.write_str(&argv.join(" ")),
        }
    }
}

/// One build to run.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub command: BuildCommand,
    /// Working directory of the command.
    pub context: PathBuf,
    /// The file or directory the build produces, relative to `context` or absolute.
    pub artifact: PathBuf,
    /// Where the whole output is kept.
    pub log_file: PathBuf,
}

/// One line the build printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutput {
    Stdout(String),
    Stderr(String),
}

impl BuildOutput {
    pub fn line(&self) -> &str {
        match self {
            Self::Stdout(line) | Self::Stderr(line) => line,
        }
    }
}

/// A successful build.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The artifact, ready to be pushed.
    pub artifact: PathBuf,
    pub log_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build command `{command}` is empty")]
    EmptyCommand { command: String },
    #[error("build context {} is not a directory", path.display())]
    ContextMissing { path: PathBuf },
    #[error("cannot start build command `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("build command `{command}` failed ({status}); full log in {}", log_file.display())]
    Failed {
        command: String,
        status: ExitStatus,
        log_file: PathBuf,
        /// The last lines of output, to show without opening the log.
        tail: Vec<String>,
    },
    #[error("build succeeded but its artifact {} does not exist", path.display())]
    ArtifactMissing { path: PathBuf },
    #[error("build artifact {} is a file, but `run` runs a command in a directory: make `artifact` the directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("build artifact {} is a directory: add `run`, the command to run in it", path.display())]
    NotAFile { path: PathBuf },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Whether a build's artifact is what its stack file says: a directory with `run`, the
/// executable file without.
pub fn check_artifact_kind(build: &berth_spec::Build, artifact: &Path) -> Result<(), BuildError> {
    let path = artifact.to_path_buf();
    match (build.run.is_some(), artifact.is_dir()) {
        (true, false) => Err(BuildError::NotADirectory { path }),
        (false, true) => Err(BuildError::NotAFile { path }),
        _ => Ok(()),
    }
}

/// Runs the build, calling `on_output` for every line of stdout and stderr as it arrives and
/// appending each to the log file.
pub async fn run_build(
    request: &BuildRequest,
    mut on_output: impl FnMut(&BuildOutput),
) -> Result<BuildResult, BuildError> {
    let command_text = request.command.to_string();
    if !request.context.is_dir() {
        return Err(BuildError::ContextMissing {
            path: request.context.clone(),
        });
    }
    let mut command = match &request.command {
        BuildCommand::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        BuildCommand::Exec(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(BuildError::EmptyCommand {
                    command: command_text,
                });
            };
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    command
        .current_dir(&request.context)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    if let Some(dir) = request.log_file.parent() {
        state_dir::create_private_dir(dir)?;
    }
    let mut log = tokio::fs::File::create(&request.log_file)
        .await
        .map_err(|e| FsError::new("create", &request.log_file, e))?;

    tracing::info!(command = %command_text, context = %request.context.display(), "build started");
    let mut child = command.spawn().map_err(|source| BuildError::Spawn {
        command: command_text.clone(),
        source,
    })?;
    let (tx, mut rx) = mpsc::channel::<BuildOutput>(256);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, tx.clone(), BuildOutput::Stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, tx.clone(), BuildOutput::Stderr));
    }
    drop(tx);

    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    while let Some(output) = rx.recv().await {
        let line = output.line();
        log.write_all(line.as_bytes())
            .await
            .map_err(|e| FsError::new("write", &request.log_file, e))?;
        log.write_all(b"\n")
            .await
            .map_err(|e| FsError::new("write", &request.log_file, e))?;
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
        on_output(&output);
    }
    log.flush()
        .await
        .map_err(|e| FsError::new("write", &request.log_file, e))?;
    let status = child.wait().await.map_err(|source| BuildError::Spawn {
        command: command_text.clone(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed {
            command: command_text,
            status,
            log_file: request.log_file.clone(),
            tail: tail.into(),
        });
    }
    let artifact = resolve_artifact(&request.context, &request.artifact);
    if !artifact.exists() {
        return Err(BuildError::ArtifactMissing { path: artifact });
    }
    tracing::info!(artifact = %artifact.display(), "build finished");
    Ok(BuildResult {
        artifact,
        log_file: request.log_file.clone(),
    })
}

fn resolve_artifact(context: &Path, artifact: &Path) -> PathBuf {
    if artifact.is_absolute() {
        artifact.to_path_buf()
    } else {
        context.join(artifact)
    }
}

/// Sends each line of `pipe` (invalid UTF-8 replaced) until it closes.
async fn forward_lines(
    pipe: impl AsyncRead + Unpin,
    tx: mpsc::Sender<BuildOutput>,
    wrap: fn(String) -> BuildOutput,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']).to_owned();
                if tx.send(wrap(line)).await.is_err() {
                    return;
                }
            }
        }
    }
}
