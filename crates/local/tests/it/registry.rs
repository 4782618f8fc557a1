//! The local image registry: push, resolve, dedupe, tags, lifecycle.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_local::registry::{
    BuildCommand, BuildError, BuildOutput, BuildRequest, Registry, RegistryError, run_build,
};
use berth_local::state_dir::StateDir;

fn registry(dir: &Path) -> Registry {
    Registry::open(&StateDir::at(dir.join(".berth"))).unwrap()
}

fn artifact(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

#[test]
fn push_then_resolve_by_tag_and_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let bin = artifact(tmp.path(), "app", "v1");
    let image = reg
        .push("backend-repo", &bin, &["0123456789ab".to_owned()])
        .unwrap();
    assert!(image.digest.starts_with("sha256:"));
    assert_eq!(image.tags, vec!["0123456789ab", "latest"]);
    assert_eq!(image.size, 2);
    assert_eq!(fs::read_to_string(&image.path).unwrap(), "v1");
    assert!(
        image
            .path
            .starts_with(tmp.path().join(".berth/registry/backend-repo"))
    );

    assert_eq!(reg.resolve("backend-repo", "latest").unwrap(), image);
    assert_eq!(reg.resolve("backend-repo", "0123456789ab").unwrap(), image);
    assert_eq!(reg.resolve("backend-repo", &image.digest).unwrap(), image);
    assert!(matches!(
        reg.resolve("backend-repo", "nope"),
        Err(RegistryError::ImageNotFound { .. })
    ));
    assert_eq!(reg.repositories().unwrap(), vec!["backend-repo"]);
}

#[test]
fn snapshot_is_read_only_and_independent_of_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let bin = artifact(tmp.path(), "app", "v1");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let image = reg.push("backend-repo", &bin, &[]).unwrap();
    fs::write(&bin, "changed").unwrap();
    assert_eq!(fs::read_to_string(&image.path).unwrap(), "v1");
    let mode = fs::metadata(&image.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o555, "executable snapshot, no write bit");
}

#[test]
fn identical_content_is_stored_once_and_tags_move() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let a = artifact(tmp.path(), "app", "same");
    let first = reg.push("frontend-repo", &a, &["aaaa".to_owned()]).unwrap();
    let other = artifact(tmp.path(), "app2", "different");
    let second = reg
        .push("frontend-repo", &other, &["bbbb".to_owned()])
        .unwrap();
    assert_ne!(first.digest, second.digest);
    // `latest` moved to the second image.
    assert_eq!(
        reg.resolve("frontend-repo", "latest").unwrap().digest,
        second.digest
    );
    assert_eq!(
        reg.resolve("frontend-repo", "aaaa").unwrap().tags,
        vec!["aaaa"]
    );

    // The same bytes again: same digest, no second copy, tags added.
    let again = reg.push("frontend-repo", &a, &["cccc".to_owned()]).unwrap();
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.tags, vec!["aaaa", "cccc", "latest"]);
    let images = reg.list("frontend-repo").unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].digest, first.digest, "newest push first");
    let dirs = fs::read_dir(tmp.path().join(".berth/registry/frontend-repo"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("sha256:"))
        .count();
    assert_eq!(dirs, 2);
}

#[test]
fn directories_are_snapshotted_with_a_content_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let make = |name: &str| {
        let dir = tmp.path().join(name).join("site");
        fs::create_dir_all(dir.join("assets")).unwrap();
        fs::write(dir.join("index.html"), "<h1>hi</h1>").unwrap();
        fs::write(dir.join("assets/app.js"), "1").unwrap();
        dir
    };
    let one = reg.push("web-repo", &make("a"), &[]).unwrap();
    let two = reg.push("web-repo", &make("b"), &[]).unwrap();
    assert_eq!(one.digest, two.digest, "same tree, same digest");
    assert_eq!(
        fs::read_to_string(one.path.join("assets/app.js")).unwrap(),
        "1"
    );
    assert!(fs::write(one.path.join("new"), "x").is_err() || running_as_root());
}

/// Root ignores permission bits; the write test above only means something for other users.
fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn lifecycle_keeps_last_n_and_never_removes_images_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let mut pushed = Vec::new();
    for i in 0..5 {
        let bin = artifact(tmp.path(), "app", &format!("v{i}"));
        pushed.push(reg.push("backend-repo", &bin, &[format!("t{i}")]).unwrap());
    }
    // The oldest image is still running somewhere.
    let in_use: HashSet<String> = [pushed[0].digest.clone()].into();
    let removed = reg.apply_lifecycle("backend-repo", 2, &in_use).unwrap();
    let removed: Vec<_> = removed.iter().map(|i| i.digest.clone()).collect();
    assert_eq!(
        removed,
        vec![pushed[2].digest.clone(), pushed[1].digest.clone()]
    );
    let kept: Vec<_> = reg
        .list("backend-repo")
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    assert_eq!(
        kept,
        vec![
            pushed[4].digest.clone(),
            pushed[3].digest.clone(),
            pushed[0].digest.clone()
        ]
    );
    assert!(pushed[0].path.exists());
    assert!(!pushed[1].path.exists(), "removed from disk too");
    assert!(matches!(
        reg.resolve("backend-repo", "t1"),
        Err(RegistryError::ImageNotFound { .. })
    ));
}

#[test]
fn bad_names_and_missing_artifacts_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let bin = artifact(tmp.path(), "app", "x");
    assert!(matches!(
        reg.push("Bad Repo", &bin, &[]),
        Err(RegistryError::InvalidRepository { .. })
    ));
    assert!(matches!(
        reg.push("repo", &bin, &["no:colons".to_owned()]),
        Err(RegistryError::InvalidTag { .. })
    ));
    assert!(matches!(
        reg.push("repo", &tmp.path().join("missing"), &[]),
        Err(RegistryError::ArtifactMissing { .. })
    ));
}

#[tokio::test]
async fn build_streams_output_keeps_a_log_and_finds_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let request = BuildRequest {
        command: BuildCommand::Shell("echo compiling; echo warn >&2; printf bin > out.bin".into()),
        context: tmp.path().to_path_buf(),
        artifact: "out.bin".into(),
        log_file: tmp.path().join("logs/build.log"),
    };
    let mut lines = Vec::new();
    let result = run_build(&request, |out| lines.push(out.clone()))
        .await
        .unwrap();
    assert!(lines.contains(&BuildOutput::Stdout("compiling".into())));
    assert!(lines.contains(&BuildOutput::Stderr("warn".into())));
    assert_eq!(fs::read_to_string(&result.artifact).unwrap(), "bin");
    let log = fs::read_to_string(&result.log_file).unwrap();
    assert!(log.contains("compiling") && log.contains("warn"));
}

#[tokio::test]
async fn failed_build_reports_status_and_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let request = BuildRequest {
        command: BuildCommand::Shell("echo step one; echo boom >&2; exit 3".into()),
        context: tmp.path().to_path_buf(),
        artifact: "never".into(),
        log_file: tmp.path().join("build.log"),
    };
    match run_build(&request, |_| {}).await {
        Err(BuildError::Failed { status, tail, .. }) => {
            assert_eq!(status.code(), Some(3));
            assert!(tail.contains(&"boom".to_owned()));
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    let missing = BuildRequest {
        command: BuildCommand::Exec(vec!["true".into()]),
        artifact: "nothing-here".into(),
        ..request
    };
    assert!(matches!(
        run_build(&missing, |_| {}).await,
        Err(BuildError::ArtifactMissing { .. })
    ));
}

#[test]
fn git_revision_tags_sha_and_dirty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(berth_local::registry::git_revision(dir), None);
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    fs::write(dir.join("a"), "1").unwrap();
    git(&["add", "a"]);
    git(&["commit", "-q", "-m", "one"]);
    // berth's own state does not make the tree dirty.
    fs::create_dir_all(dir.join(".berth/registry")).unwrap();
    fs::write(dir.join(".berth/registry/index.json"), "{}").unwrap();
    let clean = berth_local::registry::git_revision(dir).unwrap();
    assert_eq!(clean.short_sha.len(), 12);
    assert!(!clean.dirty);
    assert_eq!(clean.tag(), clean.short_sha);
    fs::write(dir.join("a"), "2").unwrap();
    let dirty = berth_local::registry::git_revision(dir).unwrap();
    assert!(dirty.dirty);
    assert_eq!(dirty.tag(), format!("{}-dirty", clean.short_sha));
}

#[test]
fn immutable_tags_refuse_to_move() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let one = artifact(tmp.path(), "app", "one");
    let first = reg
        .push_with_mutability("repo", &one, &["v1".to_owned()], true)
        .unwrap();
    // The same content under the same tag is fine.
    reg.push_with_mutability("repo", &one, &["v1".to_owned()], true)
        .unwrap();
    let two = artifact(tmp.path(), "app2", "two");
    assert!(matches!(
        reg.push_with_mutability("repo", &two, &["v1".to_owned()], true),
        Err(RegistryError::TagImmutable { .. })
    ));
    assert_eq!(reg.list("repo").unwrap().len(), 1, "nothing stored");
    assert_eq!(reg.resolve("repo", "v1").unwrap().digest, first.digest);
}

#[test]
fn images_run_by_live_processes_are_found_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = registry(tmp.path());
    let script = artifact(tmp.path(), "app.sh", "#!/bin/sh\nsleep 30\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let running = reg.push("backend-repo", &script, &[]).unwrap();
    let mut child = std::process::Command::new(&running.path).spawn().unwrap();
    for i in 0..3 {
        let bin = artifact(tmp.path(), "app.sh", &format!("#!/bin/sh\necho {i}\n"));
        reg.push("backend-repo", &bin, &[]).unwrap();
    }
    let in_use = berth_local::registry::digests_in_use([child.id()]).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(in_use.contains(&running.digest), "{in_use:?}");
    let removed = reg.apply_lifecycle("backend-repo", 1, &in_use).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(reg.resolve("backend-repo", &running.digest).is_ok());
}
