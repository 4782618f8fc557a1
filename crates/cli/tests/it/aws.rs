//! `plan`, `up` and `down` on the example's `production` environment, against moto through
//! `AWS_ENDPOINT_URL` (the standard chain, as a user's shell would set it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::text;
use berth_testkit::Moto;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml")
}

/// `berth -f <example> -e production ARGS` against moto, as a user's shell would run it.
fn command(dir: &Path, moto: &Moto, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    command
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
        .env_remove("BERTH_ENV");
    command
}

fn berth(dir: &Path, moto: &Moto, args: &[&str]) -> Output {
    command(dir, moto, args)
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
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

/// One call of an AWS JSON API (`target`: the `X-Amz-Target` header) straight to moto: the
/// CLI's tests do not link the SDK.
fn moto_call(moto: &Moto, service: &str, target: &str, body: serde_json::Value) {
    let port: u16 = moto
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("moto's port");
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let body = body.to_string();
    let response = berth_testkit::http_request(
        port,
        "POST",
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Authorization", &authorization),
        ],
        body.as_bytes(),
    )
    .expect("moto answers");
    assert_eq!(response.status, 200, "{target}: {}", text(&response.body));
}

/// `docker push`'s last step as moto takes it: ECR's PutImage with a small manifest.
fn push_image(moto: &Moto, repo: &str, tag: &str) {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                   "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
        "layers": []
    });
    moto_call(
        moto,
        "ecr",
        "AmazonEC2ContainerRegistry_V20150921.PutImage",
        serde_json::json!({
            "repositoryName": repo,
            "imageManifest": manifest.to_string(),
            "imageTag": tag,
        }),
    );
}

/// `up`, both services' first images, `up` again: the whole stack with its services.
fn provisioned(dir: &Path, moto: &Moto) {
    for round in 0..2 {
        let out = berth(dir, moto, &["up", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        if round == 0 {
            push_image(moto, "frontend-repo", "abc1234");
            push_image(moto, "backend-repo", "abc1234");
        }
    }
}

#[test]
fn deploy_on_aws_through_the_cli() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &moto, &["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Before any image: said, exit 1.
    let out = berth(dir.path(), &moto, &["deploy", "backend"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("repository backend-repo holds no image"),
        "{}",
        text(&out.stderr)
    );
    // An unknown service: a usage error, before any call.
    let out = berth(dir.path(), &moto, &["deploy", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // --strategy blue_green on a rolling service: nothing to shift with on AWS, a usage
    // error that says how to get it.
    let out = berth(
        dir.path(),
        &moto,
        &["deploy", "backend", "--strategy", "blue_green"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("a rolling service does not have on AWS"),
        "{}",
        text(&out.stderr)
    );

    push_image(&moto, "frontend-repo", "abc1234");
    push_image(&moto, "backend-repo", "abc1234");
    let out = berth(dir.path(), &moto, &["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    push_image(&moto, "backend-repo", "def5678");

    // moto runs no rollout (the deployment it lists keeps the creation's revision), so the
    // watched half is tested against a fake in berth-aws (tests/it/deploy.rs); here the
    // CLI's own part, with --no-watch.
    let out = berth(
        dir.path(),
        &moto,
        &[
            "deploy",
            "backend",
            "--image",
            "def5678",
            "--no-watch",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["revision"], 2, "{json}");
    assert_eq!(json["service"], "backend", "{json}");
    assert!(
        json["image"]
            .as_str()
            .is_some_and(|i| i.ends_with("/backend-repo:def5678")),
        "{json}"
    );
    let out = berth(dir.path(), &moto, &["plan", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(0), "{json}");
}

/// `berth` with `input` on its stdin.
fn berth_with_input(dir: &Path, moto: &Moto, args: &[&str], input: &str) -> Output {
    crate::output_with_stdin(&mut command(dir, moto, args), input)
}

#[test]
fn scale_param_logs_and_status_on_aws_through_the_cli() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    provisioned(dir.path(), &moto);

    // scale: the count changes, and the note says the stack file sets it back.
    let out = berth(dir.path(), &moto, &["scale", "backend", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "backend-service: desired count 3");
    assert!(
        text(&out.stderr).contains("the stack file says 2"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(dir.path(), &moto, &["plan", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(1), "{json}");
    for verb in [
        &["scale", "nosuch", "1"][..],
        &["deployments", "nosuch"],
        &["rollback", "nosuch"],
    ] {
        let out = berth(dir.path(), &moto, verb);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{verb:?}: {}",
            text(&out.stderr)
        );
    }

    // param: a SecureString from stdin, shown only when asked for.
    let out = berth_with_input(
        dir.path(),
        &moto,
        &[
            "param",
            "put",
            "/ecs/api/token",
            "-",
            "--type",
            "SecureString",
        ],
        "s3cr3t\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "/ecs/api/token version 1");
    let out = berth(dir.path(), &moto, &["param", "get", "/ecs/api/token"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "********");
    assert!(text(&out.stderr).contains("--with-decryption"));
    let out = berth(
        dir.path(),
        &moto,
        &["param", "get", "/ecs/api/token", "--with-decryption"],
    );
    assert_eq!(text(&out.stdout).trim(), "s3cr3t");
    let out = berth(dir.path(), &moto, &["param", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("/ecs/api/token") && l.contains("SecureString")),
        "{list}"
    );
    assert!(!list.contains("s3cr3t"), "{list}");
    let out = berth(dir.path(), &moto, &["param", "put", "/ecs/api/token", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--overwrite"),
        "{}",
        text(&out.stderr)
    );
    let out = berth(dir.path(), &moto, &["param", "get", "aws-reserved"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // logs: the group is empty here (moto runs no task).
    let out = berth(dir.path(), &moto, &["logs", "backend", "--since", "10m"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no log events in /ecs/backend"),
        "{}",
        text(&out.stderr)
    );

    // status: the same tables as locally, from ECS's describe calls.
    let out = berth(dir.path(), &moto, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    for expected in [
        "backend-service",
        "frontend-service",
        "PRIMARY",
        "DEPLOYMENT",
    ] {
        assert!(status.contains(expected), "missing {expected} in\n{status}");
    }
    let out = berth(dir.path(), &moto, &["status", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = json["services"].as_array().expect("services");
    let backend = services
        .iter()
        .find(|s| s["serviceName"] == "backend-service")
        .expect("backend");
    assert_eq!(backend["desiredCount"], 3, "{json}");
}

/// Puts one event (`at`: milliseconds since the epoch) into `stream` of `group`.
fn put_log_event(moto: &Moto, group: &str, stream: &str, at: i64, message: &str) {
    moto_call(
        moto,
        "logs",
        "Logs_20140328.PutLogEvents",
        serde_json::json!({
            "logGroupName": group,
            "logStreamName": stream,
            "logEvents": [{"timestamp": at, "message": message}],
        }),
    );
}

#[test]
fn logs_follow_on_aws_prints_new_events_once_until_ctrl_c() {
    use std::io::BufRead;
    use std::time::Duration;

    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &moto, &["up", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for stream in ["ecs/backend-app/aaaa", "ecs/backend-app/bbbb"] {
        moto_call(
            &moto,
            "logs",
            "Logs_20140328.CreateLogStream",
            serde_json::json!({"logGroupName": "/ecs/backend", "logStreamName": stream}),
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    put_log_event(
        &moto,
        "/ecs/backend",
        "ecs/backend-app/aaaa",
        now - 5000,
        "before",
    );

    let mut child = command(
        dir.path(),
        &moto,
        &["logs", "backend", "-F", "--since", "1m"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("berth runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(15))
            .expect("a line within 15 s")
    };
    assert!(next().ends_with("backend-app/aaaa before"));
    put_log_event(
        &moto,
        "/ecs/backend",
        "ecs/backend-app/bbbb",
        now - 2000,
        "b after",
    );
    put_log_event(
        &moto,
        "/ecs/backend",
        "ecs/backend-app/aaaa",
        now - 1000,
        "a after",
    );
    // Put in time order, across two streams: printed in that order, whether one poll or two
    // saw them.
    let after = [next(), next()];
    assert!(after[0].ends_with("backend-app/bbbb b after"), "{after:?}");
    assert!(after[1].ends_with("backend-app/aaaa a after"), "{after:?}");

    // Ctrl-C: exit 0, and no event came twice.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().expect("berth ends");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(rest, Vec::<String>::new(), "repeated: {rest:?}");
}

#[test]
fn doctor_on_aws_through_the_cli() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();

    // Locally: a usage error that names the AWS environments.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["-f", example().to_str().unwrap(), "doctor"])
        .current_dir(dir.path())
        .env_remove("BERTH_ENV")
        .env_remove("BERTH_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("pass -e with one of the stack's (production)"),
        "{}",
        text(&out.stderr)
    );

    provisioned(dir.path(), &moto);

    // Healthy: exit 0, every row ok.
    let out = berth(dir.path(), &moto, &["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("CHECK"), "{table}");
    assert!(!table.contains("FAIL"), "{table}");
    assert!(
        text(&out.stderr).contains("0 failed, 0 warned"),
        "{}",
        text(&out.stderr)
    );

    // A secret's parameter gone: exit 1, its row says what to change, the table fits.
    moto_call(
        &moto,
        "ssm",
        "AmazonSSM.DeleteParameter",
        serde_json::json!({"Name": "/ecs/backend/DB_NAME"}),
    );
    let out = command(dir.path(), &moto, &["doctor"])
        .env("COLUMNS", "90")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.lines().all(|l| l.chars().count() <= 90), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("secrets: /ecs/backend/DB_NAME"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("FAIL"), "{table}");
    assert_eq!(table.matches("FAIL").count(), 1, "{table}");
    assert!(
        !text(&out.stderr).contains("error:"),
        "{}",
        text(&out.stderr)
    );

    let out = berth(dir.path(), &moto, &["doctor", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json}");
    let failed: Vec<&serde_json::Value> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(failed[0]["check"], "secrets: /ecs/backend/DB_NAME");
    assert_eq!(failed[0]["fix"], "`berth up -e production` creates it");
}
