//! The stack's database: a PostgreSQL server berth starts and owns (standing in for RDS), or
//! an external one given by `database.url`.
//!
//! The local server is the system's own PostgreSQL (`initdb`, `pg_ctl`). Its data lives in
//! `.berth/db/data` and survives `berth down` + `berth up`. `initdb` refuses to run as root, so
//! when berth is root every PostgreSQL command runs as the `postgres` user (`runuser`), and
//! only the database's own directories are handed to that user:
//!
//! ```text
//! .berth/        0711 root      (traversable, not listable: params/, logs/ stay 0700)
//!   db/          0711 root
//!     port       the port to reuse
//!     data/      0700 postgres  the cluster
//!     run/       0700 postgres  unix socket and server log
//! ```
//!
//! When the `postgres` user cannot reach `.berth/db` (the stack lives under a 0700 directory
//! such as `/root`), the cluster goes to `/var/lib/berth/<hash of the .berth path>/` instead.

mod install;
mod postmaster;
mod status;

use std::ffi::OsString;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub use install::{POSTGRES_ROOT, find_bin_dir, major_version};
pub use postmaster::exited as process_exited;

/// The pid of the PostgreSQL server running on `data_dir`, if one is.
pub fn running_postmaster(data_dir: &Path) -> Option<u32> {
    postmaster::running(data_dir).map(|running| running.pid)
}
pub use status::{DatabaseEvent, DatabaseState, DatabaseStatusView};

use crate::cleanup::RunPostgres;
use crate::params::SecretString;
use crate::state_dir::{self, FsError, StateDir};

/// The OS user PostgreSQL runs as when berth runs as root.
pub const POSTGRES_OS_USER: &str = "postgres";
/// The cluster's superuser (local socket only, no password, no TCP login).
const SUPERUSER: &str = "postgres";
/// Where the cluster goes when the `postgres` user cannot reach `.berth/db`.
const FALLBACK_ROOT: &str = "/var/lib/berth";
/// Seconds `pg_ctl` waits for start and stop.
const PG_CTL_WAIT_SECS: &str = "60";

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "PostgreSQL {} is not installed under {} (installed: {}); install it (apt-get install postgresql) or set database.url",
        wanted.as_deref().unwrap_or("(any single version)"),
        root.display(),
        if installed.is_empty() { "none".to_owned() } else { installed.join(", ") }
    )]
    PostgresNotInstalled {
        wanted: Option<String>,
        installed: Vec<String>,
        root: PathBuf,
    },
    #[error(
        "berth runs as root and initdb refuses root, but there is no {user:?} user to run PostgreSQL as"
    )]
    NoPostgresUser { user: String },
    #[error(
        "the data directory {} was created by PostgreSQL {found}, but the stack asks for {wanted}",
        data_dir.display()
    )]
    VersionMismatch {
        data_dir: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no free port on 127.0.0.1 for PostgreSQL")]
    NoPort(#[source] std::io::Error),
    #[error("invalid database url: {reason}")]
    InvalidUrl { reason: String },
    #[error("cannot hand {} to the postgres user", path.display())]
    Chown {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// What the stack's other parts learn about the database (`${database.host}` and so on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseOutputs {
    pub host: String,
    pub port: u16,
    pub name: String,
}

/// What the stack asks of the local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPostgresConfig {
    /// `"15"` or `"15.4"`; `None`: the only installed version.
    pub version: Option<String>,
    /// The database to create (`fileanalyzer`).
    pub database: String,
    /// The login role the services use (the DB_USER value).
    pub username: String,
}

/// Whether the local server runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DatabaseStatus {
    /// No cluster yet (`berth up` creates it).
    NotInitialised,
    Stopped,
    Running {
        pid: u32,
        port: u16,
    },
}

/// The unprivileged account PostgreSQL runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A PostgreSQL server owned by berth, its cluster under `.berth/db`.
#[derive(Debug, Clone)]
pub struct LocalPostgres {
    config: LocalPostgresConfig,
    bin_dir: PathBuf,
    /// `.berth/` (widened to 0711 when PostgreSQL runs as another user).
    state_root: PathBuf,
    /// `.berth/db`.
    db_dir: PathBuf,
    /// Holds `data/` and `run/`: `.berth/db`, or the fallback location.
    home: PathBuf,
    run_as: Option<OsUser>,
    port: Option<u16>,
}

impl LocalPostgres {
    /// Finds the PostgreSQL the stack asks for and decides where and as whom it runs. Starts
    /// nothing.
    pub fn new(state: &StateDir, config: LocalPostgresConfig) -> Result<Self, DatabaseError> {
        Self::with_install_root(state, config, Path::new(POSTGRES_ROOT))
    }

    /// [`LocalPostgres::new`] with another install root (tests).
    pub fn with_install_root(
        state: &StateDir,
        config: LocalPostgresConfig,
        install_root: &Path,
    ) -> Result<Self, DatabaseError> {
        let bin_dir = find_bin_dir(install_root, config.version.as_deref())?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name(POSTGRES_OS_USER)
                .ok()
                .flatten()
                .ok_or_else(|| DatabaseError::NoPostgresUser {
                    user: POSTGRES_OS_USER.to_owned(),
                })?;
            Some(OsUser {
                name: user.name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            })
        } else {
            None
        };
        let db_dir = state.db();
        let home = match &run_as {
            Some(user) if blocking_ancestor(state.root(), user).is_some() => {
                fallback_home(state.root())
            }
            _ => db_dir.clone(),
        };
        Ok(Self {
            config,
            bin_dir,
            state_root: state.root().to_path_buf(),
            db_dir,
            home,
            run_as,
            port: None,
        })
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }

    /// The unix socket directory and server log's directory.
    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    pub fn log_path(&self) -> PathBuf {
        self.run_dir().join("postgres.log")
    }

    fn port_file(&self) -> PathBuf {
        self.db_dir.join("port")
    }

    /// The port of the running server (after [`LocalPostgres::start`]).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// What recovery after a killed berth needs to stop this server.
    pub fn run_record(&self) -> Option<RunPostgres> {
        Some(RunPostgres {
            data_dir: self.data_dir(),
            port: self.port?,
            bin_dir: self.bin_dir.clone(),
            run_as: self.run_as.as_ref().map(|u| u.name.clone()),
        })
    }

    /// The outputs other parts reference (`${database.host}`...), once started.
    pub fn outputs(&self) -> Option<DatabaseOutputs> {
        Some(DatabaseOutputs {
            host: "127.0.0.1".to_owned(),
            port: self.port?,
            name: self.config.database.clone(),
        })
    }

    /// Starts the server (initialising the cluster the first time), or adopts the one a killed
    /// berth left running; then makes sure the role exists with `password` and owns the
    /// database. Idempotent.
    pub async fn start(
        &mut self,
        password: &SecretString,
    ) -> Result<DatabaseOutputs, DatabaseError> {
        self.prepare_dirs()?;
        if !self.data_dir().join("PG_VERSION").is_file() {
            self.initdb().await?;
        }
        self.check_version()?;
        let port = match postmaster::running(&self.data_dir()) {
            Some(running) => {
                tracing::info!(
                    pid = running.pid,
                    port = running.port,
                    "adopting the PostgreSQL server a previous berth left running"
                );
                running.port
            }
            None => {
                postmaster::remove_stale(&self.data_dir())?;
                let port = self.choose_port()?;
                self.pg_ctl_start(port).await?;
                port
            }
        };
        self.port = Some(port);
        state_dir::write_file_atomic(&self.port_file(), port.to_string().as_bytes(), 0o600)?;
        self.ensure_role_and_database(password).await?;
        tracing::info!(port, database = %self.config.database, "PostgreSQL ready");
        Ok(DatabaseOutputs {
            host: "127.0.0.1".to_owned(),
            port,
            name: self.config.database.clone(),
        })
    }

    /// Starts the server again on the port it had, after it died (its crash recovery replays
    /// the WAL: every committed transaction survives). The port stays, because the tasks
    /// were given it. Adopts a server that is running already.
    pub async fn restart(&mut self) -> Result<u16, DatabaseError> {
        let port = self.port.ok_or_else(|| DatabaseError::Command {
            program: "pg_ctl".to_owned(),
            status: "not run".to_owned(),
            stderr: "the server was never started, so there is no port to restart it on".to_owned(),
        })?;
        self.prepare_dirs()?;
        if let Some(running) = postmaster::running(&self.data_dir()) {
            return Ok(running.port);
        }
        postmaster::remove_stale(&self.data_dir())?;
        postmaster::remove_stale_socket_lock(&self.run_dir(), port)?;
        self.pg_ctl_start(port).await?;
        tracing::info!(port, "PostgreSQL restarted");
        Ok(port)
    }

    /// Stops the server (fast shutdown: open sessions are cut, data is kept). Stopping a
    /// stopped server is not an error.
    pub async fn stop(&mut self) -> Result<(), DatabaseError> {
        if postmaster::running(&self.data_dir()).is_none() {
            postmaster::remove_stale(&self.data_dir())?;
            self.port = None;
            return Ok(());
        }
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "stop".into(),
                "-D".into(),
                data.into(),
                "-m".into(),
                "fast".into(),
                "-w".into(),
                "-t".into(),
                PG_CTL_WAIT_SECS.into(),
            ],
            None,
        )
        .await?;
        self.port = None;
        tracing::info!("PostgreSQL stopped");
        Ok(())
    }

    /// Whether the server runs, from its `postmaster.pid`.
    pub fn status(&self) -> DatabaseStatus {
        if !self.data_dir().join("PG_VERSION").is_file() {
            return DatabaseStatus::NotInitialised;
        }
        match postmaster::running(&self.data_dir()) {
            Some(running) => DatabaseStatus::Running {
                pid: running.pid,
                port: running.port,
            },
            None => DatabaseStatus::Stopped,
        }
    }

    /// Creates the directories with exactly the modes the module documentation lists.
    fn prepare_dirs(&self) -> Result<(), DatabaseError> {
        state_dir::create_private_dir(&self.db_dir)?;
        let Some(user) = &self.run_as else {
            for dir in [self.data_dir(), self.run_dir()] {
                state_dir::create_private_dir(&dir)?;
            }
            return Ok(());
        };
        if self.home == self.db_dir {
            // PostgreSQL must traverse .berth and .berth/db; it may list neither.
            state_dir::set_mode(&self.state_root, 0o711)?;
            state_dir::set_mode(&self.db_dir, 0o711)?;
        } else {
            state_dir::create_private_dir(Path::new(FALLBACK_ROOT))?;
            state_dir::set_mode(Path::new(FALLBACK_ROOT), 0o711)?;
            state_dir::create_private_dir(&self.home)?;
            chown(&self.home, user)?;
            tracing::info!(
                home = %self.home.display(),
                "the postgres user cannot reach .berth/db; the cluster lives here instead"
            );
        }
        for dir in [self.data_dir(), self.run_dir()] {
            state_dir::create_private_dir(&dir)?;
            chown(&dir, user)?;
            state_dir::set_mode(&dir, 0o700)?;
        }
        Ok(())
    }

    async fn initdb(&self) -> Result<(), DatabaseError> {
        tracing::info!(data = %self.data_dir().display(), "initialising the PostgreSQL cluster");
        let data = self.data_dir();
        let result = self
            .run(
                "initdb",
                &[
                    "-D".into(),
                    data.clone().into(),
                    "-U".into(),
                    SUPERUSER.into(),
                    // The socket directory is reachable only by the server's user (and root);
                    // every TCP login needs a password.
                    "--auth-local=trust".into(),
                    "--auth-host=scram-sha-256".into(),
                    "-E".into(),
                    "UTF8".into(),
                    "--locale=C".into(),
                ],
                None,
            )
            .await;
        if result.is_err() {
            // A half-made cluster would be mistaken for a good one next time.
            let _ = fs::remove_dir_all(&data);
        }
        result.map(drop)
    }

    fn check_version(&self) -> Result<(), DatabaseError> {
        let path = self.data_dir().join("PG_VERSION");
        let found = fs::read_to_string(&path)
            .map_err(|e| FsError::new("read", &path, e))?
            .trim()
            .to_owned();
        let wanted = self
            .bin_dir
            .parent()
            .and_then(Path::file_name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        if found != wanted {
            return Err(DatabaseError::VersionMismatch {
                data_dir: self.data_dir(),
                found,
                wanted,
            });
        }
        Ok(())
    }

    /// The remembered port when it is free, else any free port.
    fn choose_port(&self) -> Result<u16, DatabaseError> {
        let remembered = fs::read_to_string(self.port_file())
            .ok()
            .and_then(|text| text.trim().parse::<u16>().ok());
        if let Some(port) = remembered
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return Ok(port);
        }
        TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(DatabaseError::NoPort)
    }

    async fn pg_ctl_start(&self, port: u16) -> Result<(), DatabaseError> {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c unix_socket_permissions=0700",
            self.run_dir().display()
        );
        let result = self
            .run(
                "pg_ctl",
                &[
                    "start".into(),
                    "-D".into(),
                    self.data_dir().into(),
                    "-l".into(),
                    self.log_path().into(),
                    "-o".into(),
                    options.into(),
                    "-w".into(),
                    "-t".into(),
                    PG_CTL_WAIT_SECS.into(),
                ],
                None,
            )
            .await;
        if let Err(DatabaseError::Command {
            program,
            status,
            stderr,
        }) = result
        {
            let log = fs::read_to_string(self.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(DatabaseError::Command {
                program,
                status,
                stderr: format!("{stderr}; server log: {}", tail.join(" | ")),
            });
        }
        result.map(drop)
    }

    /// Creates the login role and the database it owns when absent, and sets the role's
    /// password to the parameter store's (so the two always agree). The SQL goes through
    /// stdin, never argv, and the session turns off statement logging on error so the
    /// password cannot reach the server log.
    async fn ensure_role_and_database(&self, password: &SecretString) -> Result<(), DatabaseError> {
        let user = &self.config.username;
        let db = &self.config.database;
        let script = format!(
            "SET log_min_error_statement = 'panic';\n\
             SET log_statement = 'none';\n\
             DO $berth$ BEGIN\n\
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {user_lit}) THEN\n\
                 CREATE ROLE {user_id} LOGIN;\n\
               END IF;\n\
             END $berth$;\n\
             ALTER ROLE {user_id} WITH LOGIN PASSWORD {password_lit};\n\
             SELECT 'CREATE DATABASE {db_id_escaped} OWNER {user_id_escaped}'\n\
               WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {db_lit}) \\gexec\n\
             ALTER DATABASE {db_id} OWNER TO {user_id};\n",
            user_lit = quote_literal(user),
            user_id = quote_ident(user),
            password_lit = quote_literal(password.expose()),
            db_lit = quote_literal(db),
            db_id = quote_ident(db),
            // Inside the single-quoted literal \gexec runs, quotes are doubled.
            db_id_escaped = quote_ident(db).replace('\'', "''"),
            user_id_escaped = quote_ident(user).replace('\'', "''"),
        );
        let port = self.port.unwrap_or_default();
        self.run(
            "psql",
            &[
                "-X".into(),
                "-q".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
                "-h".into(),
                self.run_dir().into(),
                "-p".into(),
                port.to_string().into(),
                "-U".into(),
                SUPERUSER.into(),
                "-d".into(),
                "postgres".into(),
                "-f".into(),
                "-".into(),
            ],
            Some(SecretString::new(script)),
        )
        .await
        .map(drop)
        // psql quotes the offending line of a failed statement: never let it carry the
        // password into an error message.
        .map_err(|error| match error {
            DatabaseError::Command {
                program,
                status,
                stderr,
            } if !password.expose().is_empty() => DatabaseError::Command {
                program,
                status,
                stderr: stderr.replace(password.expose(), crate::params::REDACTED),
            },
            other => other,
        })
    }

    /// Runs a PostgreSQL program (as the `postgres` user when berth is root).
    async fn run(
        &self,
        program: &str,
        args: &[OsString],
        stdin: Option<SecretString>,
    ) -> Result<Output, DatabaseError> {
        let path = self.bin_dir.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &user.name, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command
            .args(args)
            // A directory the server's user can enter (initdb and pg_ctl stat their cwd).
            .current_dir(&self.home)
            .env("LC_ALL", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so the terminal's Ctrl-C (sent to berth's whole group)
            // never reaches psql or the server pg_ctl forks: berth stops PostgreSQL itself,
            // last, after the tasks that use it.
            .process_group(0)
            .kill_on_drop(true);
        let spawn_error = |source| DatabaseError::Spawn {
            program: program.to_owned(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.expose().as_bytes())
                .await
                .map_err(spawn_error)?;
            drop(pipe);
        }
        let output = child.wait_with_output().await.map_err(spawn_error)?;
        if !output.status.success() {
            return Err(DatabaseError::Command {
                program: program.to_owned(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(output)
    }
}

/// A database somebody else runs (`database.url`): berth starts nothing.
#[derive(Debug, Clone)]
pub struct ExternalDatabase {
    url: SecretString,
}

impl ExternalDatabase {
    pub fn new(url: &str) -> Self {
        Self {
            url: SecretString::new(url),
        }
    }

    /// Host, port (default 5432) and database name of the URL
    /// (`postgres://user:password@host:port/name?options`).
    pub fn outputs(&self) -> Result<DatabaseOutputs, DatabaseError> {
        parse_url(self.url.expose())
    }
}

fn parse_url(url: &str) -> Result<DatabaseOutputs, DatabaseError> {
    let invalid = |reason: &str| DatabaseError::InvalidUrl {
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| invalid("it must start with postgres:// or postgresql://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Credentials end at the last '@' (a password may contain '@' only percent-encoded, but
    // be lenient).
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid("unclosed [ in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("it has no host"));
    }
    let port = match port {
        None | Some("") => 5432,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| invalid("the port is not a number from 1 to 65535"))?,
    };
    let name = path.split('?').next().unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("it names no database (postgres://host:port/NAME)"));
    }
    Ok(DatabaseOutputs {
        host: host.to_owned(),
        port,
        name: name.to_owned(),
    })
}

/// SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn quote_ident(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn chown(path: &Path, user: &OsUser) -> Result<(), DatabaseError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(|source| {
        DatabaseError::Chown {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The first directory above `.berth` that `user` may not traverse (no search permission for
/// it), if any. `.berth` itself is berth's to open up.
fn blocking_ancestor(state_root: &Path, user: &OsUser) -> Option<PathBuf> {
    let absolute = std::path::absolute(state_root).ok()?;
    let mut blocking = None;
    for dir in absolute.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let bit = if meta.uid() == user.uid {
            0o100
        } else if meta.gid() == user.gid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            blocking = Some(dir.to_path_buf());
        }
    }
    blocking
}

/// `/var/lib/berth/<first 16 hex digits of sha256(absolute .berth path)>`: stable for one
/// stack directory.
fn fallback_home(state_root: &Path) -> PathBuf {
    let absolute = std::path::absolute(state_root).unwrap_or_else(|_| state_root.to_path_buf());
    let hash = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
    Path::new(FALLBACK_ROOT).join(&hex::encode(hash)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let out = parse_url("postgres://u:p@db.example.com:6543/app?sslmode=require").unwrap();
        assert_eq!(
            out,
            DatabaseOutputs {
                host: "db.example.com".into(),
                port: 6543,
                name: "app".into()
            }
        );
        assert_eq!(parse_url("postgresql://h/app").unwrap().port, 5432);
        assert_eq!(parse_url("postgres://[::1]:5/x").unwrap().host, "::1");
        for bad in [
            "mysql://h/x",
            "postgres://h:99999/x",
            "postgres://h:1/",
            "postgres:///x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn blocking_ancestors() {
        let tmp = tempfile::tempdir().unwrap();
        let closed = tmp.path().join("closed");
        let state = closed.join("stack/.berth");
        fs::create_dir_all(&state).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o711)).unwrap();
        fs::set_permissions(closed.join("stack"), fs::Permissions::from_mode(0o755)).unwrap();
        let other = OsUser {
            name: "nobody".into(),
            uid: 65534,
            gid: 65534,
        };
        assert_eq!(blocking_ancestor(&state, &other), Some(closed.clone()));
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o711)).unwrap();
        // /tmp and / are open to everyone.
        assert_eq!(blocking_ancestor(&state, &other), None);
        assert!(fallback_home(&state).starts_with(FALLBACK_ROOT));
        assert_eq!(fallback_home(&state), fallback_home(&state));
    }
}
