//! The `file-analyzer-web` binary: configuration, JSON logs, graceful stop on SIGTERM.

use std::time::Duration;

use berth_testkit::Server;

use crate::support::dead_url;

#[test]
fn stops_on_sigterm_with_status_0_and_logs_json_lines() {
    let mut server = Server::spawn("file-analyzer-web", [("API_URL", dead_url())], "/health");
    let response = berth_testkit::http_get(server.port(), "/").expect("the server answers /");
    assert_eq!(response.status, 200, "{}", server.logs());

    server.signal("TERM");
    let status = server
        .wait_timeout(Duration::from_secs(30))
        .expect("the server stops after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        server.logs()
    );

    let stdout = server.stdout();
    let requests: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .filter(|line: &serde_json::Value| line["message"] == "request")
        .collect();
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/" && r["status"] == 200 && r["method"] == "GET"),
        "{stdout}"
    );
}

#[test]
fn bad_configuration_exits_with_status_2() {
    let program = std::path::PathBuf::from(env!("CARGO_BIN_EXE_file-analyzer-web"));
    let mut server = Server::spawn_unchecked(&program, [("API_URL", "not a url")]);
    let status = server
        .wait_timeout(Duration::from_secs(30))
        .expect("the server exits");
    assert_eq!(status.code(), Some(2), "{}", server.logs());
    assert!(server.stdout().contains("API_URL"), "{}", server.logs());
}
