//! What a client cannot take from the balancer: connections that stay open forever
//! (the idle timeout, at every protocol stage), more connections than leave descriptors for
//! the runtime (the connection bound), and heads larger than the ALB accepts (431).

use std::time::Duration;

use axum::http::StatusCode;
use berth_local::balancer::{Balancer, Forward, ListenerConfig, ListenerLimits, Rule};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Backend, get, group, healthy_backends, wait_state, within};

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const H2_EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A balancer like [`super::balancer`] with this idle timeout and these limits.
async fn balancer_limited(idle_timeout: Duration, limits: ListenerLimits) -> Balancer {
    let config = ListenerConfig {
        rules: vec![Rule::forward(10, ["/api/*"], "api")],
        default_action: Forward::to("web"),
        target_groups: vec![group("api"), group("web")],
        idle_timeout,
    };
    Balancer::bind_with_limits("127.0.0.1:0".parse().unwrap(), config, limits)
        .await
        .unwrap()
}

/// Reads and discards until the balancer closes the connection.
async fn closed_by_balancer(mut stream: TcpStream, what: &str) {
    within(&format!("the balancer to close {what}"), async {
        let mut buf = [0u8; 4096];
        // A reset is a close as well.
        while let Ok(1..) = stream.read(&mut buf).await {}
    })
    .await;
}

#[tokio::test]
async fn client_connections_idle_for_the_idle_timeout_are_closed_at_any_protocol_stage() {
    let lb = balancer_limited(
        Duration::from_millis(300),
        ListenerLimits {
            workers: 2,
            max_connections: 100,
        },
    )
    .await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let mut stages: Vec<(&str, TcpStream)> = Vec::new();
    let stages_sent: [(&str, &[&[u8]]); 5] = [
        ("a connection that sent nothing", &[]),
        ("a partial h2c preface", &[&H2_PREFACE[..10]]),
        (
            "an h2c connection idle after its preface",
            &[H2_PREFACE, H2_EMPTY_SETTINGS],
        ),
        (
            "a partial request head",
            &[b"GET / HTTP/1.1\r\nhost: x\r\n"],
        ),
        (
            "an HTTP/1.1 connection idle after a request",
            &[b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"],
        ),
    ];
    for (what, sent) in stages_sent {
        let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
        for bytes in sent {
            stream.write_all(bytes).await.unwrap();
        }
        stages.push((what, stream));
    }
    // Many silent ones too.
    for _ in 0..20 {
        let stream = TcpStream::connect(lb.local_addr()).await.unwrap();
        stages.push(("one of many silent connections", stream));
    }
    for (what, stream) in stages {
        closed_by_balancer(stream, what).await;
    }
    // The balancer itself is fine.
    assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn over_the_connection_bound_new_clients_wait_while_health_checks_go_on() {
    let lb = balancer_limited(
        Duration::from_secs(60),
        ListenerLimits {
            workers: 1,
            max_connections: 2,
        },
    )
    .await;
    let [one] = healthy_backends(&lb, ["one"]).await;
    let hold = b"GET /hold HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
        stream.write_all(hold).await.unwrap();
        held.push(stream);
    }
    within("two held requests", async {
        while one.holding() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // A third client connects (the kernel completes the handshake) and asks.
    let mut third = TcpStream::connect(lb.local_addr()).await.unwrap();
    third.write_all(hold).await.unwrap();
    // At the bound, the runtime's own connections still work: a new target is checked
    // and becomes healthy, which takes two health-check intervals.
    let two = Backend::start("two").await;
    lb.register("web", two.addr).unwrap();
    wait_state(&lb, two.addr, berth_local::balancer::TargetState::Healthy).await;
    // Meanwhile the third request was not accepted: nothing more reached a target.
    assert_eq!(one.hits() + two.hits(), 2);
    // One held request ends and its connection closes: the third gets in.
    one.release_one();
    within("the third request to arrive", async {
        while one.hits() + two.hits() < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    one.release_one();
    one.release_one();
    two.release_one();
    held.push(third);
    for mut stream in held {
        let mut response = String::new();
        within("a held response", stream.read_to_string(&mut response))
            .await
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}

#[tokio::test]
async fn silent_connections_hold_the_connection_bound_only_until_the_idle_timeout() {
    let lb = balancer_limited(
        Duration::from_millis(300),
        ListenerLimits {
            workers: 1,
            max_connections: 2,
        },
    )
    .await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let mut silent = Vec::new();
    for _ in 0..6 {
        silent.push(TcpStream::connect(lb.local_addr()).await.unwrap());
    }
    // Behind six silent connections and a bound of two, a real client is served once the
    // silent ones have been closed in turn.
    assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    for stream in silent {
        closed_by_balancer(stream, "a silent connection").await;
    }
}

#[tokio::test]
async fn request_headers_over_64_kb_are_431_and_not_forwarded() {
    let lb = super::balancer().await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let big = "x".repeat(100 * 1024);
    let within_limit = "x".repeat(60 * 1024);

    // HTTP/1.1.
    let mut stream = TcpStream::connect(lb.local_addr()).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n");
    // The balancer may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = vec![0u8; 1024];
    let n = within("the 431", stream.read(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 431"), "HTTP/1.1: {response}");

    // h2c.
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = hyper::Request::get(format!("{}/", lb.url()))
        .header("x-big", big.as_str())
        .body(Full::default())
        .unwrap();
    let response = within("the h2c 431", client.request(request))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(backend.hits(), 0);

    // Under the limit, both are forwarded.
    let reply = super::get_with(&lb, "/", &[("x-big", within_limit.as_str())]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let request = hyper::Request::get(format!("{}/", lb.url()))
        .header("x-big", within_limit.as_str())
        .body(Full::default())
        .unwrap();
    let response = within("an h2c response", client.request(request))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(backend.hits(), 2);
}
