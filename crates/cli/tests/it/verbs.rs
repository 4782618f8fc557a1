use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/file-analyzer/berth.toml")
}

pub fn berth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("BERTH_FILE")
        .env_remove("BERTH_ENV")
        .output()
        .expect("berth runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &["validate", "-f", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "is valid: stack ecs-production, 2 services (frontend, backend), 7 parameters"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("/api/* (100)"), "{stdout}");
}

#[test]
fn invalid_stack_exits_2_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("berth.toml"),
        "[stack]\nname = \"demo\"\n\n[services.web]\nprot = 80\ncpu = 300\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown key `prot`"), "{stderr}");
    assert!(stderr.contains("did you mean `port`?"), "{stderr}");
    assert!(
        stderr.contains("Fargate offers no task with 300 CPU units"),
        "{stderr}"
    );
    assert!(stderr.contains("berth.toml:5:1"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_stack_as_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("berth.toml"),
        "[stack]\nname = \"demo\"\nnmae = 1\n",
    )
    .unwrap();
    let out = berth(dir.path(), &["validate", "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problem = &json["error"]["problems"][0];
    assert_eq!(problem["code"], "berth::unknown_key");
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(json["error"]["exit_code"], 2);
    assert_eq!(
        (
            problem["labels"][0]["offset"].as_u64(),
            problem["labels"][0]["length"].as_u64()
        ),
        (Some(22), Some(4))
    );
}

#[test]
fn missing_stack_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read stack file berth.toml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(berth(dir.path(), &["no-such-verb"]).status.code(), Some(2));
    assert_eq!(
        berth(dir.path(), &["validate", "--output", "yaml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn init_writes_a_valid_starter_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = berth(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let again = berth(dir.path(), &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists; use --force"));
    assert_eq!(
        berth(dir.path(), &["init", "--force"]).status.code(),
        Some(0)
    );
}

#[test]
fn init_example_validates_and_explains_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(
        dir.path(),
        &["init", "--example", "file-analyzer", "-f", "stack.toml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = berth(
        dir.path(),
        &["explain", "-f", "stack.toml", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stack: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stack["cluster"], "ecs-production-cluster");
    assert_eq!(stack["load_balancer"]["name"], "ecs-alb");
    assert_eq!(stack["services"][1]["container_name"], "backend-app");
    assert_eq!(stack["services"][1]["routes"][0]["path"], "/api/*");
    assert_eq!(stack["services"][1]["routes"][0]["priority"], 100);
    assert_eq!(stack["database"]["instance_class"], "db.t3.medium");
    // Written outside the repository, the example builds from its own directory.
    let context = stack["services"][0]["build"]["context"].as_str().unwrap();
    assert_eq!(Path::new(context), dir.path());
}

#[test]
fn explain_shows_local_differences() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(dir.path(), &["explain", "-f", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("backend: health check every 2s (AWS 30s)"),
        "{stdout}"
    );
    let toml_part: String = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let parsed: toml::Table = toml::from_str(&toml_part).expect("explain prints TOML");
    assert_eq!(parsed["cluster"].as_str(), Some("ecs-production-cluster"));
    let out = berth(
        dir.path(),
        &[
            "explain",
            "-f",
            example().to_str().unwrap(),
            "-e",
            "staging",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no environment `staging`"));
}

#[test]
fn every_broken_stack_of_the_corpus_exits_2() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/tests/it/corpus");
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let out = berth(dir.path(), &["validate", "-f", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        assert!(
            text(&out.stderr).contains("berth::"),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        count += 1;
    }
    assert!(count >= 15, "the corpus has {count} files");
}

/// `deploy`, `rollback` and `deployments`: an unknown service is a usage error (exit 2), a
/// stack that is not running is an operation that failed (exit 1), each said plainly.
#[test]
fn release_verbs_name_the_problem_with_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example(), dir.path().join("berth.toml")).unwrap();
    for verb in ["deploy", "rollback", "deployments"] {
        let out = berth(dir.path(), &[verb, "nosuch"]);
        assert_eq!(out.status.code(), Some(2), "{verb}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("no service `nosuch`"),
            "{verb}: {}",
            text(&out.stderr)
        );
        let out = berth(dir.path(), &[verb, "backend"]);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("the stack is not running here: start it with `berth up`"),
            "{verb}: {}",
            text(&out.stderr)
        );
    }
}

/// The default build has no AWS engine: an AWS environment says how to get one, and `plan`
/// is not offered.
#[cfg(not(feature = "aws"))]
#[test]
fn aws_environment_without_the_feature_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth(
        dir.path(),
        &[
            "-f",
            example().to_str().unwrap(),
            "-e",
            "production",
            "up",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--features aws"),
        "{}",
        text(&out.stderr)
    );
    // The operating verbs hand over to the AWS engine too: the same answer.
    let file = example();
    let file = file.to_str().unwrap();
    for verb in [
        &["scale", "backend", "3"][..],
        &["status"],
        &["param", "list"],
        &["deployments", "backend"],
        &["rollback", "backend"],
    ] {
        let mut args = vec!["-f", file, "-e", "production"];
        args.extend_from_slice(verb);
        let out = berth(dir.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{verb:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("--features aws"),
            "{verb:?}: {}",
            text(&out.stderr)
        );
    }
    let help = text(&berth(dir.path(), &["--help"]).stdout);
    assert!(!help.contains("plan"), "{help}");
}
