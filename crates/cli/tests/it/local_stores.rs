//! `berth build`, `images`, `param` and `logs` through the built binary.

use crate::text;
use std::path::Path;
use std::process::{Command, Output};

const STACK: &str = r#"
[stack]
name = "demo"

[services.web]
port = 8080
build = { context = ".", command = "echo compiling; printf 'hello' > app.bin", artifact = "app.bin" }
logs = { group = "/ecs/web", retention_days = 7 }
"#;

fn stack_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("berth.toml"), STACK).unwrap();
    dir
}

fn berth(dir: &Path, args: &[&str]) -> Output {
    berth_with_stdin(dir, args, "")
}

fn berth_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    crate::output_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .env_remove("BERTH_FILE")
            .env_remove("BERTH_ENV"),
        stdin,
    )
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn build_pushes_and_images_lists() {
    let dir = stack_dir();
    let out = berth(dir.path(), &["build", "--output", "json"]);
    let built: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let digest = built[0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "sha256 of the artifact's bytes"
    );
    assert_eq!(built[0]["tags"], serde_json::json!(["latest"]));
    let snapshot = built[0]["path"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(snapshot).unwrap(), "hello");
    let log = std::fs::read_to_string(dir.path().join(".berth/registry/web.build.log")).unwrap();
    assert!(log.contains("compiling"));

    let listed = ok(&berth(dir.path(), &["images"]));
    assert!(
        listed.contains("web-repo") && listed.contains("sha256:2cf24dba5fb0"),
        "{listed}"
    );

    let unknown = berth(dir.path(), &["build", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no service `nope`"));
}

#[test]
fn failed_build_exits_1_with_its_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("berth.toml"),
        STACK.replace(
            "echo compiling; printf 'hello' > app.bin",
            "echo error: type mismatch >&2; exit 4",
        ),
    )
    .unwrap();
    let out = berth(dir.path(), &["build", "web"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: type mismatch"), "{stderr}");
    assert!(stderr.contains("web.build.log"), "{stderr}");
}

#[test]
fn param_put_get_list_rm() {
    let dir = stack_dir();
    let d = dir.path();
    assert!(ok(&berth(d, &["param", "put", "/ecs/web/HOST", "localhost"])).contains("version 1"));
    // A secret from stdin, so it is not in the shell history.
    let out = berth_with_stdin(
        d,
        &[
            "param",
            "put",
            "/ecs/web/PASSWORD",
            "-",
            "--type",
            "SecureString",
        ],
        "s3cret-value\n",
    );
    ok(&out);
    assert_eq!(
        ok(&berth(d, &["param", "get", "/ecs/web/PASSWORD"])).trim(),
        "********"
    );
    assert_eq!(
        ok(&berth(
            d,
            &["param", "get", "/ecs/web/PASSWORD", "--with-decryption"]
        ))
        .trim(),
        "s3cret-value"
    );
    let data = std::fs::read(d.join(".berth/params/parameters.json")).unwrap();
    assert!(!text(&data).contains("s3cret-value"));

    let again = berth(d, &["param", "put", "/ecs/web/HOST", "other"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("ParameterAlreadyExists"));
    ok(&berth(
        d,
        &["param", "put", "/ecs/web/HOST", "127.0.0.1", "--overwrite"],
    ));
    let got: serde_json::Value = serde_json::from_str(&ok(&berth(
        d,
        &["param", "get", "/ecs/web/HOST", "--output", "json"],
    )))
    .unwrap();
    assert_eq!(got["version"], 2);
    assert_eq!(got["value"], "127.0.0.1");

    let bad = berth(d, &["param", "put", "/aws/reserved", "v"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("reserved"));

    let list = ok(&berth(d, &["param", "list", "--path", "/ecs/web"]));
    assert!(
        list.contains("/ecs/web/HOST") && list.contains("SecureString"),
        "{list}"
    );
    assert!(!list.contains("s3cret"), "list never shows values");

    ok(&berth(d, &["param", "rm", "/ecs/web/HOST"]));
    assert_eq!(
        berth(d, &["param", "get", "/ecs/web/HOST"]).status.code(),
        Some(1)
    );
}

/// A parameter the stack declares SecureString is stored encrypted even when `put` is not
/// told `--type` (before: stored as a plain String, its value shown by `get`).
#[test]
fn a_put_without_type_takes_the_type_the_stack_declares() {
    let dir = stack_dir();
    let d = dir.path();
    let stack = format!(
        "{STACK}\n[services.web.secrets]\nAPI_KEY = \"/ecs/web/API_KEY\"\n\n\
         [parameters.\"/ecs/web/API_KEY\"]\ntype = \"SecureString\"\n"
    );
    std::fs::write(d.join("berth.toml"), stack).unwrap();
    ok(&berth_with_stdin(
        d,
        &["param", "put", "/ecs/web/API_KEY", "-"],
        "k3y-value\n",
    ));
    assert_eq!(
        ok(&berth(d, &["param", "get", "/ecs/web/API_KEY"])).trim(),
        "********"
    );
    let data = std::fs::read(d.join(".berth/params/parameters.json")).unwrap();
    assert!(!text(&data).contains("k3y-value"));
    // An undeclared name keeps the String default.
    ok(&berth(d, &["param", "put", "/ecs/web/OTHER", "plain"]));
    assert_eq!(
        ok(&berth(d, &["param", "get", "/ecs/web/OTHER"])).trim(),
        "plain"
    );
}

#[test]
fn logs_merge_filter_and_since() {
    let dir = stack_dir();
    let d = dir.path();
    let state = berth_local::state_dir::StateDir::at(d.join(".berth"));
    let logs = berth_local::logs::LogStore::open(&state).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    logs.append(
        "/ecs/web",
        "ecs/web/aaaa",
        &[(now - 7_200_000, "GET / 200"), (now - 2_000, "ERROR boom")],
    )
    .unwrap();
    logs.append("/ecs/web", "ecs/web/bbbb", &[(now - 5_000, "other task")])
        .unwrap();

    let all = ok(&berth(d, &["logs", "web"]));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3, "{all}");
    assert!(lines[0].ends_with("GET / 200"));
    assert!(lines[1].ends_with("other task"));
    assert!(lines[2].ends_with("ERROR boom"));

    let recent = ok(&berth(d, &["logs", "web", "--since", "1h"]));
    assert_eq!(recent.lines().count(), 2, "{recent}");
    let errors = ok(&berth(
        d,
        &["logs", "web", "--filter", "ERROR", "--output", "json"],
    ));
    let event: serde_json::Value = serde_json::from_str(errors.trim()).unwrap();
    assert_eq!(event["message"], "ERROR boom");
    assert_eq!(event["stream"], "ecs/web/aaaa");

    let bad = berth(d, &["logs", "web", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    // The help says which filter syntax works.
    let help = ok(&berth(d, &["logs", "--help"]));
    assert!(help.contains("quoted phrases"), "{help}");
}
