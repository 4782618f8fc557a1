//! An image registry on 127.0.0.1 (Debian's `docker-registry`, the CNCF distribution
//! registry): the stand-in for ECR's registry side in the push tests. moto emulates ECR's
//! API (repositories, authorization tokens) but not the registry an image is pushed to.
//!
//! It asks for basic authentication with the user and password of moto's ECR token
//! (`AWS` / `<account>-auth-token`), so a push succeeds only through the login that token
//! gives. Plain HTTP: podman reaches it through a `registries.conf` that marks only this
//! registry insecure ([`Registry::registries_conf`], passed as `CONTAINERS_REGISTRIES_CONF`).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{free_port, http_get};

/// The password in moto's ECR token for its default account (`123456789012-auth-token`),
/// as a bcrypt hash: the registry's htpasswd file takes only bcrypt.
const MOTO_TOKEN_BCRYPT: &str = "$2b$12$Bd6E/4JSdh9m73zVL.3E5.lnFKK0d43u5NLVLyehNDkG.9TBIofqa";
/// moto's ECR token decodes to `AWS:` and this.
pub const MOTO_ECR_PASSWORD: &str = "123456789012-auth-token";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A registry killed on drop, its storage removed.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Registry {
    /// Starts `docker-registry` on a free port, `None` (the test returns early, saying so)
    /// when it is not installed; under `CI=true` a missing registry fails instead (`.ci/run`
    /// installs it).
    ///
    /// # Panics
    /// Under `CI=true` without `docker-registry`, or when it never answers.
    pub fn start() -> Option<Registry> {
        let installed = Command::new("docker-registry")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but docker-registry is not installed (apt-get install docker-registry)"
            );
            eprintln!("docker-registry is not installed: push test not run");
            return None;
        }
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("a directory for the registry");
        let root = dir.path();
        std::fs::write(root.join("htpasswd"), format!("AWS:{MOTO_TOKEN_BCRYPT}\n"))
            .expect("write htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n\
             auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
            data = root.join("data").display(),
            htpasswd = root.join("htpasswd").display(),
        );
        std::fs::write(root.join("config.yml"), config).expect("write the registry config");
        std::fs::write(
            root.join("registries.conf"),
            format!(
                "unqualified-search-registries = [\"docker.io\"]\n\n\
                 [[registry]]\nlocation = \"127.0.0.1:{port}\"\ninsecure = true\n"
            ),
        )
        .expect("write registries.conf");
        let log = File::create(root.join("registry.log")).expect("create the registry's log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry { child, port, dir };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        // It answers /v2/ with 401 (authentication required) once it listens.
        while http_get(port, "/v2/").is_none() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", registry.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer within {STARTUP_TIMEOUT:?}:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A `registries.conf` marking this registry (and no other) as plain HTTP.
    pub fn registries_conf(&self) -> PathBuf {
        self.dir.path().join("registries.conf")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
