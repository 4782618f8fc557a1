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
