//! `berth build SERVICE --push -e <aws env>` for real: the image built with podman, the login
//! driven by moto's ECR API (its authorization token), the push to a registry on 127.0.0.1
//! (`docker-registry`, which accepts only that token's credentials), then pulled back by
//! the digest berth printed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{git, text};
use berth_testkit::{ImageCleanup, MOTO_ECR_PASSWORD, Moto, Registry, container_engine};

struct Env<'a> {
    moto: &'a Moto,
    registry: &'a Registry,
    engine: &'a Path,
}

impl Env<'_> {
    fn berth(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["-e", "production"])
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("AWS_ENDPOINT_URL", self.moto.url())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("BERTH_CONTAINER_ENGINE", self.engine)
            .env("BERTH_ECR_REGISTRY_OVERRIDE", self.registry.host())
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.registry.registries_conf(),
            )
            .env_remove("AWS_PROFILE")
            .env_remove("BERTH_FILE")
            .env_remove("BERTH_ENV")
            .stdin(Stdio::null())
            .output()
            .expect("berth runs")
    }

    fn engine(&self, args: &[&str]) -> Output {
        Command::new(self.engine)
            .args(args)
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.registry.registries_conf(),
            )
            .stdin(Stdio::null())
            .output()
            .expect("the engine runs")
    }
}

#[test]
fn build_push_logs_in_with_ecrs_token_and_the_digest_pulls_back() {
    let Some(engine) = container_engine() else {
        return;
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    let moto = Moto::start();
    let repository = format!("berth-push-{}", std::process::id());
    let _cleanup = ImageCleanup {
        engine: engine.clone(),
        repository: repository.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let stack = format!(
        r#"
[stack]
name = "shop"

[environments.production]
runtime = "aws"
region = "us-east-1"

[network]
nat = "none"

[services.api]
port = 8080
repository = "{repository}"
build = {{ context = ".", dockerfile = "Dockerfile" }}
"#
    );
    std::fs::write(dir.path().join("berth.toml"), stack).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM docker.io/library/debian:bookworm-slim\nRUN echo pushed > /pushed\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".gitignore"), ".berth\n").unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "one"]);
    let sha = text(
        &Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_owned();
    let env = Env {
        moto: &moto,
        registry: &registry,
        engine: &engine,
    };

    // Before `up` there is no repository: said before anything is built.
    let out = env.berth(dir.path(), &["build", "api", "--push"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "repository {repository} does not exist: run `berth up -e production` first"
        )),
        "{}",
        text(&out.stderr)
    );

    let out = env.berth(dir.path(), &["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = env.berth(dir.path(), &["build", "api", "--push", "--output", "json"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\nregistry:\n{}",
        registry.log()
    );
    assert!(
        !stderr.contains(MOTO_ECR_PASSWORD) && !text(&out.stdout).contains(MOTO_ECR_PASSWORD),
        "the registry password was shown"
    );
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let digest = pushed["digest"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{pushed}"
    );
    let remote = format!("{}/{repository}", registry.host());
    assert_eq!(pushed["repository"], remote.as_str());
    assert_eq!(pushed["tag"], sha.as_str());
    assert_eq!(pushed["image"], format!("{remote}@{digest}").as_str());
    let built_id = pushed["build"]["id"].as_str().unwrap().to_owned();

    // The registry holds it only behind the token's credentials: anonymous pulls fail…
    let anonymous = env.engine(&["pull", "-q", &format!("{remote}@{digest}")]);
    assert!(!anonymous.status.success(), "the registry let anyone pull");
    // …and with them, the digest berth printed pulls back the image it built.
    let pulled = env.engine(&[
        "pull",
        "-q",
        "--creds",
        &format!("AWS:{MOTO_ECR_PASSWORD}"),
        &format!("{remote}@{digest}"),
    ]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let pulled_id = text(&pulled.stdout).trim().to_owned();
    assert!(
        built_id.ends_with(&pulled_id)
            || pulled_id.ends_with(built_id.trim_start_matches("sha256:")),
        "pulled {pulled_id}, built {built_id}"
    );
    let tag = env.engine(&["image", "exists", &format!("{remote}:{sha}")]);
    assert!(tag.status.success(), "the commit's tag was not made");

    // Text output names the image by digest and how to deploy it.
    let out = env.berth(dir.path(), &["build", "api", "--push"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("pushed api → {remote}@{digest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "berth deploy api -e production --image {remote}@{digest}"
        )),
        "{stdout}"
    );
}

#[test]
fn push_needs_an_aws_environment_and_a_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("berth.toml"),
        r#"
[stack]
name = "shop"

[environments.production]
runtime = "aws"
region = "us-east-1"

[services.api]
port = 8080
build = { context = ".", command = "true", artifact = "berth.toml" }
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("BERTH_FILE")
            .env_remove("BERTH_ENV")
            .output()
            .unwrap()
    };
    let out = run(&["build", "api", "--push"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`local` runs locally"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["build", "api", "--push", "-e", "production"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not built from a Dockerfile"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["build", "--push", "-e", "production"]);
    assert_eq!(out.status.code(), Some(2), "--push names one service");
}
