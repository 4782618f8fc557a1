//! Runs the built `berth` binary: exit codes, output formats, init/validate/explain.

#[cfg(feature = "aws")]
mod aws;
mod ci;
mod containers;
mod local_stores;
#[cfg(feature = "aws")]
mod push;
mod running;
mod verbs;

/// Runs `command` with `input` on its stdin and collects what it printed.
pub fn output_with_stdin(command: &mut std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("berth ends")
}

/// A process's output as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `git args…` in `dir` with a throwaway identity.
pub fn git(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}
