//! The control API of a running berth: a Unix socket (`.berth/run/control.sock`, mode 0600 in
//! a 0700 directory, so only its user can open it) speaking line-delimited JSON.
//!
//! One request per line, one response per line:
//! `{"op":"status"}`, `{"op":"scale","service":"backend","count":3}`, `{"op":"down"}`,
//! `{"op":"deploy","service":"backend","stack_file":"/app/berth.toml","image":null}`,
//! `{"op":"rollback","service":"backend"}`, `{"op":"deployments","service":"backend"}`,
//! `{"op":"watch","service":"backend","since":12}`.
//! The response to `down` comes once everything is stopped; to `deploy` once the revision is
//! built and its deployment started; to `watch` once the service changed after `since`
//! (a long poll: what `berth deploy` shows its progress with).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::accept::{self, AcceptErrors};
use crate::database::DatabaseStatusView;
use crate::service::{BoxFuture, Deployment, RuleWeight, ServiceStatus, TargetHealthView};
use crate::state_dir::PRIVATE_DIR_MODE;

/// Mode of the run directory: only its owner may enter.
pub const RUN_DIR_MODE: u32 = PRIVATE_DIR_MODE;
/// Mode of the socket: only its owner may connect.
pub const SOCKET_MODE: u32 = 0o600;
/// The socket's file name inside the run directory.
pub const SOCKET_NAME: &str = "control.sock";

/// A request to the running berth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Status,
    Scale {
        service: String,
        count: u32,
    },
    Down,
    Deploy {
        service: String,
        stack_file: PathBuf,
        /// A tag already in the registry, instead of building.
        image: Option<String>,
        /// `rolling`, `blue_green`, `canary` or `linear`, for this deployment only.
        #[serde(default)]
        strategy: Option<String>,
    },
    Rollback {
        service: String,
    },
    Deployments {
        service: String,
    },
    Watch {
        service: String,
        since: u64,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Status { status: Box<StatusReport> },
    Scaled { service: String, count: u32 },
    Stopped,
    Deploying(DeployStarted),
    Deployments { deployments: Vec<Deployment> },
    Service(WatchedService),
    Error { message: String },
}

/// A deployment `deploy` or `rollback` started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployStarted {
    pub service: String,
    pub deployment_id: String,
    pub task_definition: String,
}

/// A service as `watch` returns it: its status, every deployment kept, and the change
/// counter to wait past next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedService {
    pub version: u64,
    pub status: Box<ServiceStatus>,
    pub deployments: Vec<Deployment>,
}

/// One target group, its weight in the listener rules and its targets' health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupStatus {
    pub target_group_name: String,
    pub service: String,
    /// Every listener rule forwarding to it (a berth older than this reports none).
    #[serde(default)]
    pub weights: Vec<RuleWeight>,
    pub targets: Vec<TargetHealthView>,
}

/// Everything `berth status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub stack: String,
    pub environment: String,
    /// The load balancer's URL.
    pub url: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub services: Vec<ServiceStatus>,
    pub target_groups: Vec<TargetGroupStatus>,
    /// The stack's local PostgreSQL (none for an external database or none at all).
    #[serde(default)]
    pub database: Option<DatabaseStatusView>,
    /// Where the local runtime deliberately differs from AWS (faster health checks...).
    pub local_differences: Vec<String>,
}

/// What the control socket asks of the runtime.
pub trait ControlHandler: Send + Sync + 'static {
    fn status(&self) -> StatusReport;
    fn scale(&self, service: &str, count: u32) -> Result<(), String>;
    /// Stops everything in order; resolves when done.
    fn down(&self) -> BoxFuture<'_, ()>;
    /// Registers a new revision of `service` from `stack_file` and starts its deployment.
    fn deploy<'a>(
        &'a self,
        service: &'a str,
        stack_file: &'a Path,
        image: Option<&'a str>,
        strategy: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeployStarted, String>>;
    fn rollback<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<DeployStarted, String>>;
    fn deployments(&self, service: &str) -> Result<Vec<Deployment>, String>;
    fn watch<'a>(
        &'a self,
        service: &'a str,
        since: u64,
    ) -> BoxFuture<'a, Result<WatchedService, String>>;
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot prepare the run directory {}", path.display())]
    RunDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on the control socket {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("permission denied: {} belongs to another user (the one running berth)", path.display())]
    PermissionDenied {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no berth is running here (cannot connect to {})", path.display())]
    NotRunning {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the control connection to berth failed")]
    Io(#[source] io::Error),
    #[error("berth answered something that is not a control response")]
    Protocol(#[source] serde_json::Error),
    #[error("berth closed the control connection without answering")]
    NoAnswer,
}

/// Creates `dir` (and parents) with mode 0700, and makes sure an existing one has it.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(RUN_DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(RUN_DIR_MODE))
}

/// The listening control socket.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `run_dir/control.sock` (replacing a stale socket file: recovery has already
    /// made sure no berth owns it).
    pub fn bind(run_dir: &Path) -> Result<Self, ControlError> {
        ensure_private_dir(run_dir).map_err(|source| ControlError::RunDir {
            path: run_dir.to_owned(),
            source,
        })?;
        let path = run_dir.join(SOCKET_NAME);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(ControlError::Bind { path, source }),
        }
        let listener = UnixListener::bind(&path).map_err(|source| ControlError::Bind {
            path: path.clone(),
            source,
        })?;
        // The directory (0700) already keeps others out; the socket's own mode says so too.
        fs::set_permissions(&path, fs::Permissions::from_mode(SOCKET_MODE)).map_err(|source| {
            ControlError::Bind {
                path: path.clone(),
                source,
            }
        })?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections until `stop` is cancelled, then removes the socket file.
    ///
    /// A failing accept (out of descriptors, usually) pauses the loop and is logged at most
    /// once per window (`crate::accept`), instead of spinning and logging every turn.
    pub async fn serve(self, handler: Arc<dyn ControlHandler>, stop: CancellationToken) {
        let mut errors = AcceptErrors::new("control socket");
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    errors.accepted();
                    tokio::spawn(serve_connection(stream, handler.clone()));
                }
                Err(error) => accept::pause(errors.failed(&error), &stop).await,
            }
        }
        let _ = fs::remove_file(&self.path);
    }
}

async fn serve_connection(stream: UnixStream, handler: Arc<dyn ControlHandler>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(request) => answer(request, handler.as_ref()).await,
            Err(error) => Response::Error {
                message: format!("not a control request: {error}"),
            },
        };
        let mut bytes = match serde_json::to_vec(&response) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, "cannot encode a control response");
                return;
            }
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn answer(request: Request, handler: &dyn ControlHandler) -> Response {
    match request {
        Request::Status => Response::Status {
            status: Box::new(handler.status()),
        },
        Request::Scale { service, count } => match handler.scale(&service, count) {
            Ok(()) => Response::Scaled { service, count },
            Err(message) => Response::Error { message },
        },
        Request::Down => {
            handler.down().await;
            Response::Stopped
        }
        Request::Deploy {
            service,
            stack_file,
            image,
            strategy,
        } => or_error(
            handler
                .deploy(&service, &stack_file, image.as_deref(), strategy.as_deref())
                .await
                .map(Response::Deploying),
        ),
        Request::Rollback { service } => {
            or_error(handler.rollback(&service).await.map(Response::Deploying))
        }
        Request::Deployments { service } => or_error(
            handler
                .deployments(&service)
                .map(|deployments| Response::Deployments { deployments }),
        ),
        Request::Watch { service, since } => {
            or_error(handler.watch(&service, since).await.map(Response::Service))
        }
    }
}

fn or_error(result: Result<Response, String>) -> Response {
    result.unwrap_or_else(|message| Response::Error { message })
}

/// A connection to a running berth.
pub struct ControlClient {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl ControlClient {
    pub async fn connect(run_dir: &Path) -> Result<Self, ControlError> {
        let path = run_dir.join(SOCKET_NAME);
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| match source.kind() {
                io::ErrorKind::PermissionDenied => ControlError::PermissionDenied { path, source },
                _ => ControlError::NotRunning { path, source },
            })?;
        Ok(Self::from_stream(stream))
    }

    /// A client on a stream already connected to the control socket.
    pub fn from_stream(stream: UnixStream) -> Self {
        let (read, write) = stream.into_split();
        Self {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    pub async fn request(&mut self, request: &Request) -> Result<Response, ControlError> {
        let mut bytes = serde_json::to_vec(request).map_err(ControlError::Protocol)?;
        bytes.push(b'\n');
        self.write
            .write_all(&bytes)
            .await
            .map_err(ControlError::Io)?;
        let line = self
            .lines
            .next_line()
            .await
            .map_err(ControlError::Io)?
            .ok_or(ControlError::NoAnswer)?;
        serde_json::from_str(&line).map_err(ControlError::Protocol)
    }
}
