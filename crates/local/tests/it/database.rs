//! The local PostgreSQL: a real server, started, used, stopped and started again.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_local::database::{
    DatabaseError, DatabaseStatus, ExternalDatabase, LocalPostgres, LocalPostgresConfig,
};
use berth_local::params::{ParamStore, SecretString};
use berth_local::state_dir::StateDir;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

fn config() -> LocalPostgresConfig {
    LocalPostgresConfig {
        version: Some("15".into()),
        database: "fileanalyzer".into(),
        username: "fileanalyzer_user".into(),
    }
}

/// A stack directory the `postgres` user can traverse (tempdirs are 0700).
fn stack_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-db-")
        .permissions(fs::Permissions::from_mode(0o711))
        .tempdir()
        .unwrap()
}

/// Stops the server whatever happens to the test, so no postgres outlives it.
struct StopOnDrop {
    data_dir: PathBuf,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let root = nix_is_root();
        let pg_ctl = "/usr/lib/postgresql/15/bin/pg_ctl";
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", pg_ctl]);
            c
        } else {
            Command::new(pg_ctl)
        };
        let _ = command
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w"])
            .current_dir("/")
            .output();
    }
}

fn nix_is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

async fn connect(port: u16, password: &str) -> Result<PgConnection, sqlx::Error> {
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("fileanalyzer_user")
        .password(password)
        .database("fileanalyzer");
    PgConnection::connect_with(&options).await
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn start_connect_stop_start_again_keeps_data() {
    let tmp = stack_dir();
    let state = StateDir::at(tmp.path().join(".berth"));
    state.ensure().unwrap();
    let params = ParamStore::open(&state).unwrap();
    let password = params
        .get_or_generate_password("/ecs/backend/DB_PASSWORD", "database password")
        .unwrap();

    let mut pg = LocalPostgres::new(&state, config()).unwrap();
    let _guard = StopOnDrop {
        data_dir: pg.data_dir(),
    };
    assert_eq!(
        pg.data_dir(),
        state.db().join("data"),
        "the cluster lives in .berth"
    );
    assert_eq!(pg.status(), DatabaseStatus::NotInitialised);
    let outputs = pg.start(&password).await.unwrap();
    assert_eq!(outputs.host, "127.0.0.1");
    assert_eq!(outputs.name, "fileanalyzer");
    assert!(matches!(pg.status(), DatabaseStatus::Running { port, .. } if port == outputs.port));

    // The server runs outside berth's process group: a Ctrl-C at berth's terminal reaches
    // berth alone, which stops PostgreSQL last, after the tasks that use it.
    let postmaster: i32 = fs::read_to_string(pg.data_dir().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let server_group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(postmaster))).unwrap();
    assert_ne!(server_group, nix::unistd::getpgrp());

    // Only the database's directories are open to the postgres user.
    if nix_is_root() {
        assert_eq!(mode(state.root()), 0o711);
        assert_eq!(mode(&state.db()), 0o711);
        assert_eq!(mode(&state.params()), 0o700);
        let data = fs::metadata(pg.data_dir()).unwrap();
        let postgres = nix_uid("postgres");
        assert_eq!(data.uid(), postgres);
        assert_eq!(mode(&pg.data_dir()), 0o700);
    }

    let mut conn = connect(outputs.port, password.expose()).await.unwrap();
    sqlx::query("CREATE TABLE kept (v text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES ('survives')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(connect(outputs.port, "wrong-password").await.is_err());

    pg.stop().await.unwrap();
    assert_eq!(pg.status(), DatabaseStatus::Stopped);
    assert!(connect(outputs.port, password.expose()).await.is_err());
    // Stopping twice is fine.
    pg.stop().await.unwrap();

    // A new berth: same port (remembered), same data, same password from the store.
    let password_again = params
        .get_or_generate_password("/ecs/backend/DB_PASSWORD", "database password")
        .unwrap();
    let mut pg2 = LocalPostgres::new(&state, config()).unwrap();
    let outputs2 = pg2.start(&password_again).await.unwrap();
    assert_eq!(outputs2.port, outputs.port);
    let mut conn = connect(outputs2.port, password_again.expose())
        .await
        .unwrap();
    let (value,): (String,) = sqlx::query_as("SELECT v FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "survives");
    conn.close().await.unwrap();

    // berth killed with SIGKILL leaves the server running: the next start adopts it.
    let DatabaseStatus::Running { pid, .. } = pg2.status() else {
        panic!("running")
    };
    let mut pg3 = LocalPostgres::new(&state, config()).unwrap();
    let outputs3 = pg3.start(&password_again).await.unwrap();
    assert_eq!(outputs3.port, outputs.port);
    assert!(matches!(pg3.status(), DatabaseStatus::Running { pid: p, .. } if p == pid));

    // A stale postmaster.pid (the server died with the machine) does not block a start.
    pg3.stop().await.unwrap();
    let pid_file = pg3.data_dir().join("postmaster.pid");
    fs::write(&pid_file, "99999999\n/x\n0\n1\n/x\n").unwrap();
    let outputs4 = pg3.start(&password_again).await.unwrap();
    assert!(
        connect(outputs4.port, password_again.expose())
            .await
            .is_ok()
    );

    // A changed password in the store is applied at the next start.
    let new_password = SecretString::new("a-new-password-0123456789");
    pg3.start(&new_password).await.unwrap();
    assert!(connect(outputs4.port, new_password.expose()).await.is_ok());
    assert!(
        connect(outputs4.port, password_again.expose())
            .await
            .is_err()
    );
    pg3.stop().await.unwrap();

    // The passwords never reach the server log.
    let log = fs::read_to_string(pg3.log_path()).unwrap();
    assert!(!log.is_empty());
    assert!(!log.contains(password_again.expose()) && !log.contains(new_password.expose()));
}

#[test]
fn missing_version_is_a_clear_error() {
    let tmp = stack_dir();
    let state = StateDir::at(tmp.path().join(".berth"));
    let err = LocalPostgres::new(
        &state,
        LocalPostgresConfig {
            version: Some("8.1".into()),
            ..config()
        },
    )
    .unwrap_err();
    assert!(matches!(err, DatabaseError::PostgresNotInstalled { .. }));
    let text = err.to_string();
    assert!(text.contains("8.1") && text.contains("15"), "{text}");
}

#[test]
fn external_database_outputs() {
    let db = ExternalDatabase::new("postgres://u:secret@db.internal:6432/fileanalyzer");
    let outputs = db.outputs().unwrap();
    assert_eq!(outputs.host, "db.internal");
    assert_eq!(outputs.port, 6432);
    assert_eq!(outputs.name, "fileanalyzer");
    assert!(!format!("{db:?}").contains("secret"));
}

fn nix_uid(name: &str) -> u32 {
    let out = Command::new("id").args(["-u", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The stack under a directory the postgres user cannot enter (like /root): the cluster goes
/// to /var/lib/berth/<hash>, and the seed's master user `postgres` logs in with its password.
#[tokio::test]
async fn unreachable_stack_dir_falls_back_and_superuser_name_works() {
    if !nix_is_root() {
        return; // Without root PostgreSQL runs as us and reaches any directory we can.
    }
    let tmp = tempfile::tempdir().unwrap(); // 0700: closed to the postgres user
    let state = StateDir::at(tmp.path().join("stack/.berth"));
    state.ensure().unwrap();
    let config = LocalPostgresConfig {
        username: "postgres".into(),
        ..config()
    };
    let mut pg = LocalPostgres::new(&state, config.clone()).unwrap();
    let home = pg.data_dir().parent().unwrap().to_path_buf();
    assert!(home.starts_with("/var/lib/berth"), "{}", home.display());
    struct RemoveHome(PathBuf);
    impl Drop for RemoveHome {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    // Dropped last: after the server is stopped.
    let _remove = RemoveHome(home.clone());
    let _guard = StopOnDrop {
        data_dir: pg.data_dir(),
    };
    assert_eq!(
        mode(state.root()),
        0o700,
        ".berth is not opened up for nothing"
    );

    let password = SecretString::new("master-password-123");
    let outputs = pg.start(&password).await.unwrap();
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(outputs.port)
        .username("postgres")
        .password(password.expose())
        .database("fileanalyzer");
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let (one,): (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    pg.stop().await.unwrap();

    // The same stack directory finds the same cluster again.
    let again = LocalPostgres::new(&state, config).unwrap();
    assert_eq!(again.data_dir(), pg.data_dir());
}
