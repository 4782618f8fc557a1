//! What `berth up`, `status` and `down` say about the berth that runs a stack: another
//! berth starting it at the same time, another user's berth, a berth that was killed.
//!
//! The stack's one service is a small script (`python3 -m http.server`), so these tests
//! build nothing.

use crate::{assert_stalled, text, up_detached};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bounds every wait: a broken test fails instead of hanging (never a performance check).
const PATIENCE: Duration = Duration::from_secs(120);

struct Stack {
    dir: tempfile::TempDir,
}

impl Stack {
    fn new() -> Self {
        let stack = Self::with_service(
            r#"desired_count = 2
build = { context = ".", command = "true", artifact = "app.sh" }"#,
        );
        let script = stack.path().join("app.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\nexec /usr/bin/python3 -m http.server --bind \"$HOST\" --directory / \"$PORT\"\n",
        )
        .unwrap();
        set_mode(&script, 0o755);
        stack
    }

    /// A stack whose one service `web` has `service` (its count and build) besides its port
    /// and health check.
    fn with_service(service: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("berth.toml"),
            format!(
                r#"
[stack]
name = "demo"

[environments.local]
listen = "127.0.0.1:{port}"
health_check_interval = "2s"
healthy_threshold = 2

[services.web]
port = 8080
{service}
health_check = {{ path = "/", interval = "5s", timeout = "2s", healthy_threshold = 2, unhealthy_threshold = 2, matcher = "200" }}
"#
            ),
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
        command
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("COLUMNS", "200")
            .env_remove("BERTH_FILE")
            .env_remove("BERTH_ENV")
            .stdin(Stdio::null());
        command
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("berth runs")
    }

    fn status_json(&self) -> serde_json::Value {
        let output = self.berth(&["status", "--output", "json"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.berth(&["down"]);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn task_pids(status: &serde_json::Value) -> Vec<u64> {
    status["services"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .filter_map(|t| t["pid"].as_u64())
        .collect()
}

/// Two `berth up -d` at once in one directory: one starts the stack; the other says that
/// another berth is starting or running it, with its pid, and prints none of its log.
#[test]
fn of_two_concurrent_detached_ups_the_loser_names_the_winner_not_its_log() {
    let stack = Stack::new();
    let first = stack
        .command(&["up", "-d"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = stack
        .command(&["up", "-d"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ups = [first.id(), second.id()];
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let (winners, losers): (Vec<&Output>, Vec<&Output>) =
        outputs.iter().partition(|o| o.status.success());
    assert_eq!(
        (winners.len(), losers.len()),
        (1, 1),
        "{:?}",
        outputs.iter().map(|o| text(&o.stderr)).collect::<Vec<_>>()
    );
    let loser = text(&losers[0].stderr);
    assert_eq!(losers[0].status.code(), Some(1), "{loser}");
    let berth_pid = stack.status_json()["pid"].as_u64().unwrap();
    assert!(
        loser.contains("berth is already running this stack"),
        "{loser}"
    );
    // The berth that runs the stack, or the `berth up -d` that is starting it.
    let winner_up = if outputs[0].status.success() {
        ups[0]
    } else {
        ups[1]
    };
    assert!(
        loser.contains(&format!("pid {berth_pid}")) || loser.contains(&format!("pid {winner_up})")),
        "{loser}"
    );
    // Nothing of the winner's log (its progress lines, its tracing output).
    for line in [
        "load balancer listening",
        "starting tasks",
        " INFO ",
        "log (",
    ] {
        assert!(!loser.contains(line), "the loser printed {line:?}: {loser}");
    }
    assert!(losers[0].stdout.is_empty());

    // Once up, the detached berth itself holds the start lock (its `berth up -d` is gone):
    // a later `berth up` names it too.
    let lock = stack.path().join(".berth/run/start.lock");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        berth_pid.to_string()
    );
    let free = Command::new("flock")
        .arg("-n")
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap();
    assert!(!free.success(), "nobody holds the start lock");
    let third = stack.berth(&["up"]);
    let third_err = text(&third.stderr);
    assert_eq!(third.status.code(), Some(1), "{third_err}");
    assert!(
        third_err.contains(&format!("pid {berth_pid}")),
        "{third_err}"
    );
}

/// `berth status` and `berth down` as a user who may not reach the running berth's socket
/// say permission denied, not "not running", and touch nothing.
#[test]
fn status_and_down_as_another_user_say_permission_denied() {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
    {
        // Only root can run berth as itself and `berth status` as another user; the CI runs
        // as root, so this never passes vacuously there.
        assert!(std::env::var_os("CI").is_none(), "this test needs root");
        return;
    }
    let stack = Stack::new();
    let output = stack.berth(&["up", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The other user may read the stack file, not berth's state.
    set_mode(stack.path(), 0o755);
    set_mode(&stack.path().join("berth.toml"), 0o644);
    for verb in ["status", "down"] {
        let output = Command::new("runuser")
            .args(["-u", "berth-task", "--"])
            .arg(env!("CARGO_BIN_EXE_berth"))
            .arg(verb)
            .current_dir(stack.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "berth {verb}: {stderr}");
        assert!(
            stderr.contains("permission denied"),
            "berth {verb}: {stderr}"
        );
        assert!(!stderr.contains("not running"), "berth {verb}: {stderr}");
    }
    // And the berth of the stack still runs.
    let output = stack.berth(&["status"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// After the berth running a stack is killed, `berth status` names what it left running
/// (tasks and their pids) and how to clean it; `berth down` then cleans it.
#[test]
fn status_after_berth_was_killed_names_its_orphans_and_the_cleanup() {
    let stack = Stack::new();
    let output = stack.berth(&["up", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status = stack.status_json();
    let berth_pid = status["pid"].as_u64().unwrap();
    let tasks = task_pids(&status);
    assert_eq!(tasks.len(), 2, "{status}");
    let killed = Command::new("kill")
        .args(["-9", &berth_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Its threads may still hold the socket open a moment after it shows as a zombie: wait
    // until the socket no longer answers.
    let socket = stack.path().join(".berth/run/control.sock");
    wait_until("berth's socket to stop answering", || {
        !alive(berth_pid) && std::os::unix::net::UnixStream::connect(&socket).is_err()
    });
    assert!(
        tasks.iter().all(|pid| alive(*pid)),
        "the tasks outlive berth"
    );

    let output = stack.berth(&["status"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {berth_pid}) is gone")),
        "{stderr}"
    );
    assert!(stderr.contains("2 task(s)"), "{stderr}");
    for pid in &tasks {
        assert!(stderr.contains(&pid.to_string()), "{stderr}");
    }
    assert!(
        stderr.contains("`berth up`") && stderr.contains("`berth down`"),
        "{stderr}"
    );

    let output = stack.berth(&["down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    wait_until("the orphaned tasks to be gone", || {
        tasks.iter().all(|pid| !alive(*pid))
    });
    let output = stack.berth(&["status"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("start it with `berth up`"), "{stderr}");
}

/// Once `berth down` returns, the detached berth has exited: it keeps neither the start
/// lock nor a process slot after the stack is stopped.
#[test]
fn after_down_the_detached_berth_exits() {
    let stack = Stack::new();
    let output = stack.berth(&["up", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let berth_pid = stack.status_json()["pid"].as_u64().unwrap();
    let output = stack.berth(&["down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let exited = wait_for(|| !alive(berth_pid));
    if !exited {
        // Not left behind for the next test run.
        let _ = Command::new("kill")
            .args(["-9", &berth_pid.to_string()])
            .status();
    }
    assert!(
        exited,
        "the detached berth (pid {berth_pid}) still runs after `berth down`"
    );
}

/// A foreground `berth up` stopped by `berth down` exits, with status 0.
#[test]
fn after_down_a_foreground_berth_exits() {
    let stack = Stack::new();
    let mut up = stack
        .command(&["up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the stack to be steady", || {
        let output = stack.berth(&["status", "--output", "json"]);
        output.status.success()
            && serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .is_ok_and(|s| s["services"][0]["steadyState"] == true)
    });
    let output = stack.berth(&["down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut exit = None;
    let exited = wait_for(|| {
        exit = up.try_wait().unwrap();
        exit.is_some()
    });
    if !exited {
        let _ = up.kill();
        let _ = up.wait();
    }
    assert!(exited, "the foreground berth still runs after `berth down`");
    assert!(exit.unwrap().success(), "{exit:?}");
}

/// Whether `condition` holds within PATIENCE (for a test that cleans up before it fails).
fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() >= PATIENCE {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A detached berth that cannot start (its port is taken) exits, and its `berth up -d`
/// reports it, instead of the two waiting on each other for the start lock.
#[test]
fn a_detached_berth_that_cannot_start_exits_and_its_up_says_so() {
    let stack = Stack::new();
    let toml = std::fs::read_to_string(stack.path().join("berth.toml")).unwrap();
    let listen = toml
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    let _taken = std::net::TcpListener::bind(listen).unwrap();
    let (code, stderr) = up_detached(stack.command(&["up", "-d"]), PATIENCE);
    assert_eq!(
        code,
        Some(1),
        "`berth up -d` gave up, or still waits: {stderr}"
    );
    assert!(stderr.contains("the detached berth exited"), "{stderr}");
}

/// A service whose app never opens its port: its tasks fail their ELB health checks one
/// after another, and once as many have failed as the circuit breaker's threshold (3 for one
/// task), `berth up -d` stops the stack and says which service and why, instead of waiting.
#[test]
fn up_gives_up_on_a_service_whose_port_never_opens_and_says_why() {
    let stack =
        Stack::with_service(r#"build = { context = ".", command = "true", artifact = "app.sh" }"#);
    let script = stack.path().join("app.sh");
    std::fs::write(
        &script,
        "#!/bin/sh
exec sleep 600
",
    )
    .unwrap();
    set_mode(&script, 0o755);
    let outcome = up_detached(stack.command(&["up", "-d"]), PATIENCE);
    assert_stalled(
        &outcome,
        "web",
        "Task failed ELB health checks in (target-group",
    );
    // The stack is down: no berth answers for it.
    let status = stack.berth(&["status"]);
    assert!(
        text(&status.stderr).contains("the stack is not running here: start it with `berth up`"),
        "{}{}",
        text(&status.stdout),
        text(&status.stderr)
    );
}

/// A berth killed in the middle of a deployment: the next `berth up` says which deployment
/// of which service was interrupted, and the service runs one revision (the stack file's,
/// numbered after the revisions the killed berth registered) and serves.
#[test]
fn the_next_up_reports_a_deployment_a_killed_berth_interrupted() {
    let stack = Stack::new();
    let file = stack.path().join("berth.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    let output = stack.berth(&["up", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let berth_pid = stack.status_json()["pid"].as_u64().unwrap();

    // A release whose tasks never pass their health check, with a grace period that keeps
    // the scheduler from giving up on them: the deployment stays IN_PROGRESS.
    let bad = good
        .replace("path = \"/\"", "path = \"/nonexistent\"")
        .replace(
            "[services.web]\n",
            "[services.web]\ndeployment = { health_check_grace_period = \"10m\" }\n",
        );
    assert_ne!(bad, good);
    std::fs::write(&file, &bad).unwrap();
    let mut deploy = stack
        .command(&["deploy", "web"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut deployment_id = String::new();
    wait_until("the release to be rolling out", || {
        let status = stack.status_json();
        let deployments = status["services"][0]["deployments"].as_array().unwrap();
        let rolling = deployments.len() == 2
            && deployments[0]["taskDefinition"] == "web-task:2"
            && deployments[0]["rolloutState"] == "IN_PROGRESS";
        if rolling {
            deployment_id = deployments[0]["id"].as_str().unwrap().to_owned();
        }
        rolling
    });
    // The runtime rewrites the recovery file within half a second of a change.
    let state_file = stack.path().join(".berth/run/state.json");
    wait_until("the recovery file to hold the deployment", || {
        std::fs::read_to_string(&state_file).is_ok_and(|s| s.contains(&deployment_id))
    });
    let killed = Command::new("kill")
        .args(["-9", &berth_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = deploy.kill();
    let _ = deploy.wait();
    let socket = stack.path().join(".berth/run/control.sock");
    wait_until("berth's socket to stop answering", || {
        !alive(berth_pid) && std::os::unix::net::UnixStream::connect(&socket).is_err()
    });

    // The user puts the stack file back and starts the stack again.
    std::fs::write(&file, &good).unwrap();
    let log = stack.path().join("up.log");
    let mut up = stack
        .command(&["up"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(stack.path().join("up.err")).unwrap())
        .spawn()
        .unwrap();
    wait_until("the stack to be steady again", || {
        let output = stack.berth(&["status", "--output", "json"]);
        output.status.success()
            && serde_json::from_slice::<serde_json::Value>(&output.stdout)
                .is_ok_and(|s| s["services"][0]["steadyState"] == true)
    });
    let said = format!(
        "{}{}",
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(stack.path().join("up.err")).unwrap()
    );
    assert!(
        said.contains(&format!(
            "during deployment {deployment_id} of service web-service (web-task:2 replacing web-task:1)"
        )),
        "{said}"
    );
    let status = stack.status_json();
    let revisions: Vec<&str> = status["services"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| t["taskDefinition"].as_str().unwrap())
        .collect();
    assert_eq!(revisions, ["web-task:3", "web-task:3"], "{status}");
    let url = status["url"].as_str().unwrap().to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let output = stack.berth(&["down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let exited = wait_for(|| up.try_wait().unwrap().is_some());
    if !exited {
        let _ = up.kill();
        let _ = up.wait();
    }
}

/// An interpreted app without a container: the service's artifact is a directory (a shell
/// script server and the page it serves) with `run`. Its tasks run in the directory's
/// registry snapshot, behind the balancer; `berth deploy` after an edit serves the new page
/// from a new snapshot, and the first snapshot is still there, unchanged.
///
/// The app is a Python script that serves `os.getcwd()`, an absolute path: as root, berth
/// runs tasks as `berth-task`, which may not walk the path into `.berth` (0700), so the
/// snapshot is mounted for the task where it may (before: EACCES on every request).
#[test]
fn a_directory_artifact_runs_from_its_snapshot_and_deploys_a_new_one() {
    let stack = Stack::with_service(
        r#"desired_count = 1
build = { command = "true", artifact = "app/", run = ["/usr/bin/python3", "server.py"] }"#,
    );
    let app = stack.path().join("app");
    std::fs::create_dir(&app).unwrap();
    // Serves its working directory by its absolute path: the snapshot, if berth runs it there.
    // (`/usr/bin/python3`: root's PATH may find a pyenv shim first, a script only root reads.)
    std::fs::write(
        app.join("server.py"),
        "import functools, http.server, os\n\
         handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.getcwd())\n\
         http.server.ThreadingHTTPServer((os.environ['HOST'], int(os.environ['PORT'])), handler).serve_forever()\n",
    )
    .unwrap();
    std::fs::write(app.join("page.txt"), "version one\n").unwrap();

    let output = stack.berth(&["up", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status = stack.status_json();
    let url = status["url"].as_str().unwrap().to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let page = || {
        berth_testkit::http_get(port, "/page.txt")
            .filter(|r| r.status == 200)
            .map(|r| text(&r.body))
    };
    wait_until("the first version through the balancer", || {
        page().as_deref() == Some("version one\n")
    });
    // The task runs in a snapshot, not in the build's directory.
    let registry = stack.path().join(".berth/registry");
    let in_snapshot = |pid: u64| {
        let cwd = std::fs::metadata(format!("/proc/{pid}/cwd")).unwrap();
        snapshots_with(&registry, "page.txt")
            .into_iter()
            .find(|dir| {
                let meta = std::fs::metadata(dir).unwrap();
                (meta.dev(), meta.ino()) == (cwd.dev(), cwd.ino())
            })
            .unwrap_or_else(|| panic!("task {pid} does not run in a snapshot"))
    };
    let first = in_snapshot(task_pids(&stack.status_json())[0]).join("page.txt");

    std::fs::write(app.join("page.txt"), "version two\n").unwrap();
    let output = stack.berth(&["deploy", "web"]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    wait_until("the new version through the balancer", || {
        page().as_deref() == Some("version two\n")
    });
    assert_eq!(
        std::fs::read_to_string(&first).unwrap(),
        "version one\n",
        "the first snapshot is kept as it was"
    );
    let second = in_snapshot(task_pids(&stack.status_json())[0]).join("page.txt");
    assert_ne!(second, first, "a new snapshot");

    let output = stack.berth(&["down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// Every directory below `root` that holds a file named `name`.
fn snapshots_with(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(dir.clone());
            }
        }
    }
    found
}
