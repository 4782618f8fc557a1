//! A throwaway PostgreSQL 15 server for tests.
//!
//! `initdb` refuses to run as root, so when the test runs as root every PostgreSQL command
//! runs as the `postgres` user through `runuser`, in a temporary directory handed to it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use tempfile::TempDir;

use crate::free_port;

/// Where Debian's PostgreSQL 15 keeps its server binaries (not on PATH).
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The unprivileged account the server runs as when the test runs as root.
const PG_OS_USER: &str = "postgres";

/// A PostgreSQL server in its own temporary directory, stopped and deleted on drop.
///
/// ```no_run
/// let pg = berth_testkit::Postgres::start();
/// let url = pg.url(); // postgres://berth:...@127.0.0.1:<port>/fileanalyzer
/// ```
pub struct Postgres {
    // Dropped after the server is stopped (fields drop in declaration order after `Drop`).
    dir: TempDir,
    port: u16,
    running: AtomicBool,
    as_postgres_user: bool,
}

impl Postgres {
    /// Database user created by [`Postgres::start`] (a superuser).
    pub const USER: &'static str = "berth";
    /// Its password (scram-sha-256 over TCP).
    pub const PASSWORD: &'static str = "berth-test-password";
    /// The database created by [`Postgres::start`], named as in the seed's task definition.
    pub const DBNAME: &'static str = "fileanalyzer";

    /// Initialise, start and create [`Postgres::DBNAME`] on a free 127.0.0.1 port.
    ///
    /// # Panics
    /// When PostgreSQL cannot be initialised or started; the message includes its output.
    pub fn start() -> Postgres {
        let as_postgres_user = effective_uid_is_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-pg-")
            .tempdir()
            .expect("create a temporary directory for PostgreSQL");
        if as_postgres_user {
            hand_over_to_postgres_user(dir.path());
        }
        let pg = Postgres {
            dir,
            port: free_port(),
            running: AtomicBool::new(false),
            as_postgres_user,
        };
        let pwfile = pg.dir.path().join("pwfile");
        fs::write(&pwfile, Self::PASSWORD).expect("write the password file");
        if as_postgres_user {
            hand_over_to_postgres_user(&pwfile);
        }
        pg.run_checked(
            "initdb",
            &[
                "-D".as_ref(),
                pg.data_dir().as_os_str(),
                "-U".as_ref(),
                Self::USER.as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "--auth-host=scram-sha-256".as_ref(),
                "--auth-local=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        pg.start_again();
        pg.create_database(Self::DBNAME);
        pg
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &'static str {
        Self::USER
    }

    pub fn password(&self) -> &'static str {
        Self::PASSWORD
    }

    pub fn dbname(&self) -> &'static str {
        Self::DBNAME
    }

    /// `postgres://user:password@127.0.0.1:port/dbname`
    pub fn url(&self) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            Self::USER,
            Self::PASSWORD,
            self.host(),
            self.port,
            Self::DBNAME
        )
    }

    /// The seed's backend variables pointing at this server:
    /// `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, `DB_PASSWORD`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DB_HOST".into(), self.host().into()),
            ("DB_PORT".into(), self.port.to_string()),
            ("DB_NAME".into(), Self::DBNAME.into()),
            ("DB_USER".into(), Self::USER.into()),
            ("DB_PASSWORD".into(), Self::PASSWORD.into()),
        ]
    }

    /// Create another database on this server (for tests that want isolation).
    pub fn create_database(&self, name: &str) {
        self.run_client("createdb", &[name.as_ref()]);
    }

    /// Run one SQL statement through `psql` on [`Postgres::DBNAME`]; returns its unaligned,
    /// tuples-only output (`a|b` per row), trimmed.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.run_client(
            "psql",
            &[
                "-d".as_ref(),
                Self::DBNAME.as_ref(),
                "-v".as_ref(),
                "ON_ERROR_STOP=1".as_ref(),
                "-At".as_ref(),
                "-c".as_ref(),
                sql.as_ref(),
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stop the server (fast shutdown: open connections are cut), keeping its data.
    pub fn stop(&self) {
        if self.running.swap(false, Ordering::SeqCst) {
            self.run_checked(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    self.data_dir().as_os_str(),
                    "-m".as_ref(),
                    "fast".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
        }
    }

    /// Start the server again on the same port with the same data (after [`Postgres::stop`]).
    pub fn start_again(&self) {
        if self.running.load(Ordering::SeqCst) {
            return;
        }
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c shared_buffers=32MB -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        self.run_checked(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data_dir().as_os_str(),
                "-l".as_ref(),
                self.log_path().as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
        self.running.store(true, Ordering::SeqCst);
    }

    /// Whether the server is meant to be running (between start and stop).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// The server's log file (useful in assertion messages).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A client tool (`psql`, `createdb`) connected to this server as [`Postgres::USER`].
    fn run_client(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let port = self.port.to_string();
        let mut all: Vec<&std::ffi::OsStr> = vec![
            "-h".as_ref(),
            "127.0.0.1".as_ref(),
            "-p".as_ref(),
            port.as_ref(),
            "-U".as_ref(),
            Self::USER.as_ref(),
        ];
        all.extend_from_slice(args);
        self.run_checked(program, &all)
    }

    fn run_checked(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let program_path = Path::new(PG_BIN).join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_OS_USER, "--"]).arg(&program_path);
            c
        } else {
            Command::new(&program_path)
        };
        command
            .args(args)
            .env("PGPASSWORD", Self::PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .current_dir(self.dir.path());
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program_path.display()));
        assert!(
            output.status.success(),
            "{program} failed ({}):\n{}\n{}\nserver log: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            fs::read_to_string(self.log_path()).unwrap_or_default()
        );
        output
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running.swap(false, Ordering::SeqCst) {
            // Immediate: the directory is deleted right after, nothing needs to be kept.
            let program_path = Path::new(PG_BIN).join("pg_ctl");
            let mut command = if self.as_postgres_user {
                let mut c = Command::new("runuser");
                c.args(["-u", PG_OS_USER, "--"]).arg(&program_path);
                c
            } else {
                Command::new(&program_path)
            };
            let _ = command
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .current_dir(self.dir.path())
                .output();
        }
    }
}

/// Whether this process runs as root (then PostgreSQL must run as another user).
fn effective_uid_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Give a path to the `postgres` OS user so that its server can write there.
fn hand_over_to_postgres_user(path: &Path) {
    let status = Command::new("chown")
        .args([PG_OS_USER, "--"])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(
        status.success(),
        "chown {PG_OS_USER} {} failed",
        path.display()
    );
}
