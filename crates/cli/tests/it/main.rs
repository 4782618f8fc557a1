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

/// Runs `berth up -d` (`command`) to its end, at most `patience`: its exit code (`None`: it
/// was still waiting, and has been killed) and what it printed on stderr.
pub fn up_detached(
    mut command: std::process::Command,
    patience: std::time::Duration,
) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut up = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth runs");
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(exit) = up.try_wait().unwrap() {
            break exit.code();
        }
        if start.elapsed() > patience {
            let _ = up.kill();
            let _ = up.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut up.stderr.take().unwrap(), &mut stderr).unwrap();
    (code, stderr)
}

/// `berth up -d` gave up on `service` (`commands/stalled.rs`): exit 1, the service, the
/// count, the last task's reason starting with `reason`, and not the detached berth's log.
pub fn assert_stalled((code, stderr): &(Option<i32>, String), service: &str, reason: &str) {
    assert_eq!(*code, Some(1), "`berth up -d` gave up: {stderr}");
    assert!(
        stderr.contains(&format!("service {service} cannot start: "))
            && stderr.contains(" of its tasks failed in a row"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("stopped because: {reason}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(" INFO "),
        "the error, not the detached berth's log: {stderr}"
    );
}
