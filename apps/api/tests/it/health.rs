//! Health, readiness, the index, the OpenAPI document, fallbacks, CORS, logs.

use std::time::Duration;

use serde_json::Value;

use crate::common::{Env, error_message, json};

#[tokio::test]
async fn liveness_readiness_and_index_answer() {
    let env = Env::start();
    for path in ["/api/health", "/health"] {
        let (status, body) = json(env.get(path).await).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["status"], "ok");
    }
    let (status, body) = json(env.get("/api/health/ready").await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, body) = json(env.get("/api").await).await;
    assert_eq!(status, 200);
    assert!(body["endpoints"]["upload"].is_string(), "{body}");
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let env = Env::start();
    let (status, body) = json(env.get("/api/openapi.json").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["openapi"], "3.1.0");
    let paths = body["paths"].as_object().unwrap();
    for path in [
        "/api",
        "/api/health",
        "/api/health/ready",
        "/health",
        "/api/openapi.json",
        "/api/files/upload",
        "/api/files",
        "/api/files/{id}",
        "/api/files/{id}/download",
        "/api/files/{id}/convert",
        "/api/files/{id}/compress",
        "/api/files/{id}/resize",
        "/api/files/{id}/crop",
        "/api/files/{id}/extract-text",
        "/api/files/stats/summary",
        "/api/files/duplicates",
        "/api/files/batch/delete",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let env = Env::start();
    let (status, body) = json(env.get("/api/nope").await).await;
    assert_eq!(status, 404);
    assert!(error_message(&body).contains("/api/nope"));
    let (status, body) = json(env.get("/").await).await;
    assert_eq!(status, 404);
    error_message(&body);
    let (status, body) = json(env.client.put(env.url("/api/files")).send().await.unwrap()).await;
    assert_eq!(status, 405);
    error_message(&body);
}

#[tokio::test]
async fn cors_allows_the_frontend_origin_only() {
    let env = Env::start();
    let preflight = |origin: &'static str| {
        env.client
            .request(reqwest::Method::OPTIONS, env.url("/api/files"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .send()
    };
    let allowed = preflight("http://frontend.test").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://frontend.test"
    );
    let other = preflight("http://evil.test").await.unwrap();
    // The configured origin is the only one ever allowed; browsers refuse the mismatch.
    assert!(
        other
            .headers()
            .get("access-control-allow-origin")
            .is_none_or(|v| v == "http://frontend.test")
    );
}

#[tokio::test]
async fn each_request_is_one_json_log_line_with_the_trace_id() {
    let env = Env::start_with(&[("ACCESS_LOG", "all")]);
    let response = env
        .client
        .get(env.url("/api/files?limit=3"))
        .header("X-Amzn-Trace-Id", "Root=1-test-trace")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "Root=1-test-trace");
    let generated = env.get("/api/health").await;
    assert!(!generated.headers()["x-request-id"].is_empty());
    // The line is written after the response is sent: wait for it.
    let line = env.api.wait_for_line(Duration::from_secs(30), |line| {
        line.contains("\"request_id\":\"Root=1-test-trace\"")
    });
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/api/files");
    assert_eq!(line["status"], 200);
    assert!(
        line["latency_ms"].is_number() && line["bytes"].is_number(),
        "{line}"
    );
    assert!(
        !env.api.logs().contains(berth_testkit::Postgres::PASSWORD),
        "the database password must never be logged"
    );
}

#[test]
fn listens_on_the_host_address_it_is_given_and_on_all_interfaces_by_default() {
    use std::net::{IpAddr, Ipv4Addr};

    let pg = berth_testkit::Postgres::start();
    let local = crate::common::spawn_api(&pg, &[("HOST", "127.0.0.1")]);
    assert_eq!(
        berth_testkit::listening_addresses(local.port()),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        "loopback only"
    );
    let default = crate::common::spawn_api(&pg, &[]);
    assert_eq!(
        berth_testkit::listening_addresses(default.port()),
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        "every interface, as a container on AWS needs"
    );
}

#[tokio::test]
async fn by_default_only_refused_and_failed_requests_are_logged() {
    let env = Env::start();
    for _ in 0..3 {
        assert_eq!(env.get("/api/files").await.status(), 200);
    }
    let missing = env
        .client
        .get(env.url("/api/nowhere"))
        .header("X-Amzn-Trace-Id", "Root=1-missing")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Lines are written in order: once the 404's is there, the 200s' would be too.
    env.api.wait_for_line(Duration::from_secs(30), |line| {
        line.contains("\"request_id\":\"Root=1-missing\"")
    });
    let access: Vec<Value> = env
        .api
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "access")
        .collect();
    // (Start-up readiness polls answered 503 are logged too: they are errors.)
    assert!(
        access.iter().all(|l| l["status"].as_u64() >= Some(400)),
        "{access:?}"
    );
    assert_eq!(
        access
            .iter()
            .filter(|l| l["path"] == "/api/nowhere")
            .count(),
        1
    );
}
