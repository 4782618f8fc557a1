//! `plan`, `up` and `down` on the example's `production` environment, against moto through
//! `AWS_ENDPOINT_URL` (the standard chain, as a user's shell would set it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_testkit::Moto;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml")
}

fn berth(dir: &Path, moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-f", example().to_str().unwrap(), "-e", "production"])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("BERTH_FILE")
        .env_remove("BERTH_ENV")
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn plan_up_down_on_aws_through_the_cli() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();

    let out = berth(dir.path(), &moto, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains(r#"+ vpc "ecs-production-vpc" (vpc)"#),
        "{plan}"
    );
    assert!(plan.contains("master_password = (secret)"), "{plan}");
    assert!(
        plan.contains("! service frontend waits for a first image in repository frontend-repo")
    );

    // No terminal and no --yes: refused, nothing changed.
    let out = berth(dir.path(), &moto, &["up"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass --yes"),
        "{}",
        text(&out.stderr)
    );
    let again = text(&berth(dir.path(), &moto, &["plan"]).stdout);
    assert_eq!(again, plan, "a refused up changed nothing");

    let out = berth(dir.path(), &moto, &["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("http://ecs-alb-"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("repository frontend-repo holds no image"),
        "{stderr}"
    );
    assert!(stderr.contains("create vpc done"), "{stderr}");

    let out = berth(dir.path(), &moto, &["plan", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(0), "{json}");

    let out = berth(dir.path(), &moto, &["down"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = berth(dir.path(), &moto, &["down", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("kept: final snapshot ecs-postgres-db-final-"),
        "{stderr}"
    );
    let out = berth(dir.path(), &moto, &["plan", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let creates = json["steps"].as_array().unwrap();
    assert!(creates.iter().all(|s| s["action"] == "create"), "{json}");
}

#[test]
fn missing_credentials_name_the_call_and_what_to_do() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "-f",
            example().to_str().unwrap(),
            "-e",
            "production",
            "plan",
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", moto.url())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("sts:GetCallerIdentity failed"), "{stderr}");
    assert!(stderr.contains("configure AWS credentials"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
