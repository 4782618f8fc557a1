//! The `file-analyzer-web` binary: configuration, JSON logs, graceful stop on SIGTERM.

use std::time::{Duration, Instant};

use berth_testkit::Server;

use crate::fake_api::FakeApi;
use crate::support::dead_url;

/// Upper bound on every wait for an event (generous: the machine may be busy).
const BOUND: Duration = Duration::from_secs(30);

#[test]
fn stops_on_sigterm_with_status_0_and_logs_json_lines() {
    let mut server = Server::spawn(
        "file-analyzer-web",
        [("API_URL", dead_url()), ("ACCESS_LOG", "all".into())],
        "/health",
    );
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
fn listens_on_the_host_address_it_is_given_and_on_all_interfaces_by_default() {
    use std::net::{IpAddr, Ipv4Addr};

    let local = Server::spawn(
        "file-analyzer-web",
        [("API_URL", dead_url()), ("HOST", "127.0.0.1".into())],
        "/health",
    );
    assert_eq!(
        berth_testkit::listening_addresses(local.port()),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        "loopback only"
    );
    let default = Server::spawn("file-analyzer-web", [("API_URL", dead_url())], "/health");
    assert_eq!(
        berth_testkit::listening_addresses(default.port()),
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        "every interface, as a container on AWS needs"
    );
}

#[test]
fn by_default_only_refused_and_failed_requests_are_logged() {
    let server = Server::spawn("file-analyzer-web", [("API_URL", dead_url())], "/health");
    let home = berth_testkit::http_get(server.port(), "/").unwrap();
    assert_eq!(home.status, 200);
    let missing = berth_testkit::http_get(server.port(), "/nowhere").unwrap();
    assert_eq!(missing.status, 404);
    // The line is written before the answer is sent.
    let requests: Vec<serde_json::Value> = server
        .stdout()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 1, "{}", server.logs());
    assert_eq!(requests[0]["path"], "/nowhere");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish() {
    let api = FakeApi::start().await;
    let open = api.hold_stats();
    let base = api.base.clone();
    let mut server = tokio::task::spawn_blocking(move || {
        Server::spawn("file-analyzer-web", [("API_URL", base)], "/health")
    })
    .await
    .unwrap();
    let port = server.port();

    // A page whose API call is held open.
    let in_flight =
        tokio::spawn(async move { reqwest::get(format!("http://127.0.0.1:{port}/stats")).await });
    let deadline = Instant::now() + BOUND;
    while !api
        .requests()
        .contains(&"GET /api/files/stats/summary".to_owned())
    {
        assert!(Instant::now() < deadline, "the page never called the API");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.signal("TERM");
    // The listener closes: new connections are refused while the old one is served.
    let deadline = Instant::now() + BOUND;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            server.is_alive(),
            "the server quit with a request in flight"
        );
        assert!(
            Instant::now() < deadline,
            "the listener stayed open after SIGTERM\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.is_alive(), "{}", server.logs());

    open.send(true).unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Statistics"));
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_timeout(Duration::from_secs(30));
        (status, server.logs())
    })
    .await
    .unwrap();
    assert!(
        status.0.is_some_and(|s| s.success()),
        "exit {:?}\n{}",
        status.0,
        status.1
    );
}
