//! The load balancer in front of small in-process backends that can be told to be healthy,
//! unhealthy, slow or crashed (ECS-SEMANTICS §5).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{self, post};
use berth_local::balancer::{
    Algorithm, Balancer, BalancerError, Forward, HealthCheckConfig, ListenerConfig, ReasonCode,
    Rule, RuleRef, TargetGroupConfig, TargetHealth, TargetState, WeightedTargetGroup,
};
use berth_local::runtime::BalancerRouter;
use berth_local::service::TargetRouter;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a client cannot take: idle connections, the connection bound, huge heads.
mod limits;
/// Traffic-shifting deployments (blue/green, canary, linear) on the balancer.
mod shift;
/// The balancer against targets that speak raw HTTP/1.1 from a script.
mod wire;

/// An upper bound so a broken test fails instead of hanging; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("gave up waiting for {what}"),
    }
}

// ---------------------------------------------------------------------------------------
// Test backends

const HEALTH_OK: u8 = 0;
const HEALTH_503: u8 = 1;
const HEALTH_HANG: u8 = 2;

struct BackendState {
    name: String,
    health: AtomicU8,
    /// Requests served, health checks excluded.
    hits: AtomicUsize,
    /// `/hold` requests waiting for a permit.
    holding: AtomicUsize,
    release: Semaphore,
    /// Bytes of `/upload` bodies received so far.
    received: AtomicUsize,
    /// The connections (numbered in accept order) that served requests other than checks.
    connections: std::sync::Mutex<std::collections::BTreeSet<usize>>,
}

/// The number of the connection a request came on (set by the accept loop).
#[derive(Clone, Copy)]
struct ConnectionNumber(usize);

/// A backend on 127.0.0.1: `/health` (as told), `/hold` (until released), `/slow` (5 s),
/// `/headers` (echoes request headers as JSON), `/upload` (counts bytes), anything else
/// answers `<name> <path>`.
struct Backend {
    addr: SocketAddr,
    state: Arc<BackendState>,
    crash: CancellationToken,
}

impl Backend {
    async fn start(name: &str) -> Self {
        Self::start_with(name, true).await
    }

    /// A backend that closes its connection after every response when `keep_alive` is false.
    async fn start_with(name: &str, keep_alive: bool) -> Self {
        let state = Arc::new(BackendState {
            name: name.to_owned(),
            health: AtomicU8::new(HEALTH_OK),
            hits: AtomicUsize::new(0),
            holding: AtomicUsize::new(0),
            release: Semaphore::new(0),
            received: AtomicUsize::new(0),
            connections: std::sync::Mutex::default(),
        });
        let router = Router::new()
            .route("/health", routing::get(health))
            .route("/hold", routing::get(hold))
            .route("/slow", routing::get(slow))
            .route("/headers", routing::get(echo_headers))
            .route("/upload", post(upload))
            .fallback(whoami)
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let crash = CancellationToken::new();
        let crashed = crash.clone();
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            for number in 0.. {
                tokio::select! {
                    () = crashed.cancelled() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let router = router.clone();
                        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(ConnectionNumber(number));
                            hyper::service::Service::call(&TowerToHyperService::new(router.clone()), request)
                        });
                        connections.spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(keep_alive)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                }
            }
            // Dropping the listener and every connection task: the process "crashed".
        });
        Self { addr, state, crash }
    }

    fn set_health(&self, health: u8) {
        self.state.health.store(health, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn holding(&self) -> usize {
        self.state.holding.load(Ordering::SeqCst)
    }

    fn release_one(&self) {
        self.state.release.add_permits(1);
    }

    /// Closes the listener and every open connection.
    fn crash(&self) {
        self.crash.cancel();
    }
}

async fn health(State(state): State<Arc<BackendState>>) -> StatusCode {
    match state.health.load(Ordering::SeqCst) {
        HEALTH_OK => StatusCode::OK,
        HEALTH_503 => StatusCode::SERVICE_UNAVAILABLE,
        _ => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK
        }
    }
}

async fn whoami(
    State(state): State<Arc<BackendState>>,
    axum::Extension(ConnectionNumber(number)): axum::Extension<ConnectionNumber>,
    uri: axum::http::Uri,
) -> String {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.connections.lock().unwrap().insert(number);
    format!("{} {}", state.name, uri)
}

async fn hold(State(state): State<Arc<BackendState>>) -> String {
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.holding.fetch_add(1, Ordering::SeqCst);
    state.release.acquire().await.unwrap().forget();
    state.holding.fetch_sub(1, Ordering::SeqCst);
    state.name.clone()
}

async fn slow(State(state): State<Arc<BackendState>>) -> String {
    tokio::time::sleep(Duration::from_secs(5)).await;
    state.name.clone()
}

async fn echo_headers(headers: HeaderMap) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                serde_json::Value::String(value.to_str().unwrap_or_default().to_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

async fn upload(State(state): State<Arc<BackendState>>, body: Body) -> String {
    let mut body = body;
    let mut total = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            total += data.len();
            state.received.fetch_add(data.len(), Ordering::SeqCst);
        }
    }
    total.to_string()
}

// ---------------------------------------------------------------------------------------
// Balancer set-up and client

/// Short enough for quick tests, long enough that a loaded CI machine does not make a
/// healthy backend time out twice in a row.
fn fast_checks() -> HealthCheckConfig {
    HealthCheckConfig {
        path: "/health".to_owned(),
        interval: Duration::from_millis(250),
        timeout: Duration::from_millis(200),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..HealthCheckConfig::default()
    }
}

fn group(name: &str) -> TargetGroupConfig {
    TargetGroupConfig {
        health_check: fast_checks(),
        deregistration_delay: Duration::from_secs(60),
        ..TargetGroupConfig::new(name)
    }
}

/// `/api/*` → `api`, everything else → `web`.
async fn balancer_with(groups: Vec<TargetGroupConfig>) -> Balancer {
    let config = ListenerConfig {
        rules: vec![Rule::forward(10, ["/api/*"], "api")],
        default_action: Forward::to("web"),
        target_groups: groups,
        idle_timeout: Duration::from_secs(60),
    };
    Balancer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

async fn balancer() -> Balancer {
    balancer_with(vec![group("api"), group("web")]).await
}

/// [`balancer`] with `web`'s request timeout set to `timeout`.
async fn balancer_with_request_timeout(timeout: Duration) -> Balancer {
    let web = TargetGroupConfig {
        request_timeout: timeout,
        ..group("web")
    };
    balancer_with(vec![group("api"), web]).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(lb: &Balancer, path: &str) -> Reply {
    get_with(lb, path, &[]).await
}

async fn get_with(lb: &Balancer, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = hyper::Request::get(format!("{}{path}", lb.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = within(
        "a response",
        client().request(request.body(Full::default()).unwrap()),
    )
    .await
    .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn health_of(lb: &Balancer, target: SocketAddr) -> Option<TargetHealth> {
    lb.target_health().into_iter().find(|t| t.target == target)
}

/// Waits until `target` is in `state`; returns its health then.
async fn wait_state(lb: &Balancer, target: SocketAddr, state: TargetState) -> TargetHealth {
    within(&format!("{target} to be {state}"), async {
        loop {
            if let Some(health) = health_of(lb, target)
                && health.state == state
            {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Starts one backend per name, registers each in `web`, and waits until all are healthy.
async fn healthy_backends<const N: usize>(lb: &Balancer, names: [&str; N]) -> [Backend; N] {
    healthy_backends_in(lb, names.map(|name| ("web", name))).await
}

/// Starts one backend per `(target group, name)`, registers it there, and waits until all
/// are healthy.
async fn healthy_backends_in<const N: usize>(
    lb: &Balancer,
    placements: [(&str, &str); N],
) -> [Backend; N] {
    let mut backends = Vec::with_capacity(N);
    for (group, name) in placements {
        let backend = Backend::start(name).await;
        lb.register(group, backend.addr).unwrap();
        backends.push(backend);
    }
    for backend in &backends {
        wait_state(lb, backend.addr, TargetState::Healthy).await;
    }
    match backends.try_into() {
        Ok(backends) => backends,
        Err(_) => unreachable!("one backend per name"),
    }
}

/// Sends `GET /hold` through the balancer and waits until one of `backends` holds it.
async fn hold_request(lb: &Balancer, backends: &[&Backend]) -> tokio::task::JoinHandle<Reply> {
    let held = {
        let lb = lb.clone();
        tokio::spawn(async move { get(&lb, "/hold").await })
    };
    within("the held request to arrive", async {
        while backends.iter().map(|b| b.holding()).sum::<usize>() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    held
}

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn routes_by_path_pattern_with_the_default_rule_last() {
    let lb = balancer().await;
    let [_api, _web] = healthy_backends_in(&lb, [("api", "api"), ("web", "web")]).await;

    let cases = [
        ("/api/files", "api /api/files"),
        (
            "/api/files/1?download=true",
            "api /api/files/1?download=true",
        ),
        ("/api", "web /api"),
        ("/API/files", "web /API/files"),
        ("/", "web /"),
        ("/upload.html?q=/api/", "web /upload.html?q=/api/"),
    ];
    for (path, expected) in cases {
        let reply = get(&lb, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.body, expected, "{path}");
    }
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly() {
    let lb = balancer().await;
    let [one, two] = healthy_backends(&lb, ["one", "two"]).await;

    for _ in 0..10 {
        assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    }
    assert_eq!((one.hits(), two.hits()), (5, 5));
}

#[tokio::test]
async fn connections_to_targets_are_kept_alive_and_reused() {
    let lb = balancer().await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let client = client();
    for _ in 0..20 {
        let request = hyper::Request::get(format!("{}/", lb.url()))
            .body(Full::default())
            .unwrap();
        let response = within("a response", client.request(request)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(backend.hits(), 20);
    // One client connection, one worker, one pooled upstream connection.
    assert_eq!(backend.state.connections.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_target_closing_idle_connections_causes_no_error() {
    let lb = balancer().await;
    let backend = Backend::start_with("web", false).await;
    lb.register("web", backend.addr).unwrap();
    wait_state(&lb, backend.addr, TargetState::Healthy).await;
    for _ in 0..10 {
        assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    }
    assert_eq!(backend.state.connections.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn h2c_clients_are_served_over_http_1_1_targets() {
    let lb = balancer().await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    for path in ["/files?page=2", "/headers"] {
        let request = hyper::Request::get(format!("{}{path}", lb.url()))
            .body(Full::default())
            .unwrap();
        let response = within("an h2c response", client.request(request))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        if path == "/headers" {
            let headers: serde_json::Value = serde_json::from_str(&body).unwrap();
            // The HTTP/2 authority became the HTTP/1.1 Host.
            assert_eq!(headers["host"], lb.local_addr().to_string().as_str());
        } else {
            assert_eq!(body, "web /files?page=2");
        }
    }
}

#[tokio::test]
async fn no_registered_target_is_503_like_the_alb() {
    let lb = balancer().await;
    let reply = get(&lb, "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["content-type"], "text/html");
    assert!(
        reply
            .body
            .contains("<title>503 Service Temporarily Unavailable</title>"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body.len(), 162);
}

#[tokio::test]
async fn all_targets_unhealthy_fails_open() {
    let lb = balancer().await;
    let one = Backend::start("one").await;
    let two = Backend::start("two").await;
    one.set_health(HEALTH_503);
    two.set_health(HEALTH_503);
    lb.register("web", one.addr).unwrap();
    lb.register("web", two.addr).unwrap();
    let health = wait_state(&lb, one.addr, TargetState::Unhealthy).await;
    assert_eq!(health.reason, Some(ReasonCode::ResponseCodeMismatch));
    assert_eq!(
        health.description.as_deref(),
        Some("Health checks failed with these codes: [503]")
    );
    wait_state(&lb, two.addr, TargetState::Unhealthy).await;

    for _ in 0..4 {
        assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    }
    assert_eq!((one.hits(), two.hits()), (2, 2));
}

#[tokio::test]
async fn an_unhealthy_target_gets_no_traffic_while_another_is_healthy() {
    let lb = balancer().await;
    let [_good, bad] = healthy_backends(&lb, ["good", "bad"]).await;

    bad.set_health(HEALTH_503);
    wait_state(&lb, bad.addr, TargetState::Unhealthy).await;
    let before = bad.hits();
    for _ in 0..6 {
        assert!(get(&lb, "/").await.body.starts_with("good"));
    }
    assert_eq!(bad.hits(), before);

    // It comes back after healthy_threshold successes.
    bad.set_health(HEALTH_OK);
    let health = wait_state(&lb, bad.addr, TargetState::Healthy).await;
    assert_eq!(health.reason, None);
}

#[tokio::test]
async fn target_states_and_reasons_are_observable() {
    let lb = balancer().await;
    let mut changes = lb.subscribe();
    let backend = Backend::start("web").await;
    backend.set_health(HEALTH_HANG);
    lb.register("web", backend.addr).unwrap();

    // Right after registration, before any check.
    let first = health_of(&lb, backend.addr).unwrap();
    assert_eq!(first.target_group, "web");
    assert_eq!(first.state, TargetState::Initial);
    assert_eq!(first.reason, Some(ReasonCode::RegistrationInProgress));
    assert_eq!(
        first.description.as_deref(),
        Some("Target registration is in progress")
    );

    let timed_out = wait_state(&lb, backend.addr, TargetState::Unhealthy).await;
    assert_eq!(timed_out.reason, Some(ReasonCode::Timeout));
    assert_eq!(timed_out.description.as_deref(), Some("Request timed out"));

    backend.set_health(HEALTH_OK);
    wait_state(&lb, backend.addr, TargetState::Healthy).await;

    backend.crash();
    let failed = wait_state(&lb, backend.addr, TargetState::Unhealthy).await;
    assert_eq!(failed.reason, Some(ReasonCode::FailedHealthChecks));

    // The subscriber saw the same story, in order.
    let mut seen = Vec::new();
    while let Ok(change) = changes.try_recv() {
        if seen.last() != Some(&change.state) {
            seen.push(change.state);
        }
    }
    assert_eq!(
        seen,
        [
            TargetState::Initial,
            TargetState::Unhealthy,
            TargetState::Healthy,
            TargetState::Unhealthy
        ]
    );

    let json = serde_json::to_value(health_of(&lb, backend.addr).unwrap()).unwrap();
    assert_eq!(json["state"], "unhealthy");
    assert_eq!(json["reason"], "Target.FailedHealthChecks");
}

#[tokio::test]
async fn refused_connection_is_502() {
    let lb = balancer().await;
    let nobody = closed_port().await;
    lb.register("web", nobody).unwrap();
    // Unhealthy and alone: fail-open sends the request there anyway.
    wait_state(&lb, nobody, TargetState::Unhealthy).await;
    let reply = get(&lb, "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(reply.body.contains("502 Bad Gateway"), "{}", reply.body);
}

/// Health checks that run once at registration (a target is healthy after one success) and
/// then not for a minute: longer than any test waits, so nothing the checker does can
/// happen during a test.
fn checked_once() -> HealthCheckConfig {
    HealthCheckConfig {
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(1),
        healthy_threshold: 1,
        ..fast_checks()
    }
}

#[tokio::test]
async fn a_crashed_target_gives_502_while_health_checks_still_see_it_healthy() {
    let lb = balancer_with(vec![
        group("api"),
        TargetGroupConfig {
            health_check: checked_once(),
            ..group("web")
        },
    ])
    .await;
    let [doomed, survivor] = healthy_backends(&lb, ["doomed", "survivor"]).await;
    // Warm the keep-alive pool towards both targets, then kill one.
    for _ in 0..2 {
        assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    }
    doomed.crash();
    // Round robin: one request to each target.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(get(&lb, "/").await.status);
    }
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_GATEWAY]);
    assert_eq!(survivor.hits(), 2);
    // The 502 came while the checker had not acted (its next check is a minute away).
    assert_eq!(
        health_of(&lb, doomed.addr).unwrap().state,
        TargetState::Healthy
    );
}

#[tokio::test]
async fn health_checks_take_a_crashed_target_out_of_rotation() {
    let lb = balancer().await;
    let [doomed, _survivor] = healthy_backends(&lb, ["doomed", "survivor"]).await;
    doomed.crash();
    wait_state(&lb, doomed.addr, TargetState::Unhealthy).await;
    for _ in 0..4 {
        let reply = get(&lb, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.starts_with("survivor"));
    }
}

#[tokio::test]
async fn a_target_slower_than_the_request_timeout_is_504() {
    let lb = balancer_with_request_timeout(Duration::from_millis(300)).await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let reply = get(&lb, "/slow").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        reply.body.contains("504 Gateway Time-out"),
        "{}",
        reply.body
    );
    // The target is still fine for quick requests.
    assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn draining_finishes_in_flight_requests_while_new_ones_go_elsewhere() {
    let lb = balancer().await;
    let [one, two] = healthy_backends(&lb, ["one", "two"]).await;

    let held = hold_request(&lb, &[&one, &two]).await;
    let (busy, idle) = if one.holding() == 1 {
        (&one, &two)
    } else {
        (&two, &one)
    };

    lb.deregister("web", busy.addr).unwrap();
    let draining = health_of(&lb, busy.addr).unwrap();
    assert_eq!(draining.state, TargetState::Draining);
    assert_eq!(draining.reason, Some(ReasonCode::DeregistrationInProgress));

    let busy_hits = busy.hits();
    for _ in 0..4 {
        let reply = get(&lb, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.starts_with(&idle.state.name));
    }
    assert_eq!(busy.hits(), busy_hits);
    // Still draining: the held request keeps it (the delay is 60 s).
    assert_eq!(
        health_of(&lb, busy.addr).map(|h| h.state),
        Some(TargetState::Draining)
    );

    busy.release_one();
    let reply = within("the held request", held).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, busy.state.name);
    // Deregistration completes as soon as nothing is in flight (the task may stop now), but
    // the target is listed as draining until its delay ends (S5.20; the delay is 60 s).
    within("draining to finish", lb.wait_drained("web", busy.addr)).await;
    assert_eq!(
        health_of(&lb, busy.addr).map(|h| h.state),
        Some(TargetState::Draining)
    );
    assert!(health_of(&lb, idle.addr).is_some());
    // Registering the address again (a new task on the same port) makes a fresh target
    // beside the draining one.
    lb.register("web", busy.addr).unwrap();
    let states: Vec<TargetState> = lb
        .target_health()
        .into_iter()
        .filter(|t| t.target == busy.addr)
        .map(|t| t.state)
        .collect();
    assert_eq!(states, [TargetState::Draining, TargetState::Initial]);
}

#[tokio::test]
async fn the_deregistration_delay_bounds_draining_and_fails_what_is_left() {
    let lb = balancer_with(vec![
        group("api"),
        TargetGroupConfig {
            deregistration_delay: Duration::from_millis(200),
            ..group("web")
        },
    ])
    .await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let held = hold_request(&lb, &[&backend]).await;
    let mut changes = lb.subscribe();
    lb.deregister("web", backend.addr).unwrap();
    within(
        "the delay to end draining",
        lb.wait_drained("web", backend.addr),
    )
    .await;
    assert!(lb.target_health().is_empty());
    let mut states = Vec::new();
    while let Ok(change) = changes.try_recv() {
        states.push(change.state);
    }
    assert_eq!(states, [TargetState::Draining, TargetState::Unused]);
    // The request still in flight when the delay ended fails, as on the ALB (S5.19, S5.11).
    let reply = within("the held request to fail", held).await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    // With no target left, new requests get 503.
    assert_eq!(get(&lb, "/").await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn deregistering_an_unknown_target_is_an_error() {
    let lb = balancer().await;
    let nobody = closed_port().await;
    assert!(lb.deregister("web", nobody).is_err());
    assert!(lb.register("nope", nobody).is_err());
    // An unknown target is already drained.
    within("nothing", lb.wait_drained("web", nobody)).await;
}

#[tokio::test]
async fn forwarded_headers_are_added() {
    let lb = balancer().await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let port = lb.local_addr().port().to_string();

    let fresh: serde_json::Value = serde_json::from_str(&get(&lb, "/headers").await.body).unwrap();
    assert_eq!(fresh["x-forwarded-for"], "127.0.0.1");
    assert_eq!(fresh["x-forwarded-proto"], "http");
    assert_eq!(fresh["x-forwarded-port"], port.as_str());
    assert_eq!(fresh["host"], format!("127.0.0.1:{port}").as_str());
    let trace = fresh["x-amzn-trace-id"].as_str().unwrap();
    let segment = trace.strip_prefix("Root=1-").unwrap();
    let (epoch, id) = segment.split_once('-').unwrap();
    assert_eq!(epoch.len(), 8);
    assert_eq!(id.len(), 24);
    assert!(segment.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));

    let reply = get_with(
        &lb,
        "/headers",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            (
                "x-amzn-trace-id",
                "Root=1-67891233-abcdef012345678912345678;Lineage=a",
            ),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "only for the balancer"),
        ],
    )
    .await;
    let forwarded: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(forwarded["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    let trace = forwarded["x-amzn-trace-id"].as_str().unwrap();
    assert!(trace.starts_with("Self=1-"), "{trace}");
    assert!(
        trace.ends_with(";Root=1-67891233-abcdef012345678912345678;Lineage=a"),
        "{trace}"
    );
    assert!(forwarded.get("x-hop").is_none());
}

#[tokio::test]
async fn a_10_mb_upload_streams_through() {
    let lb = balancer().await;
    let [backend] = healthy_backends(&lb, ["web"]).await;

    let (chunks, upload) = start_upload(&lb, Some(10 * 1024 * 1024));

    let chunk = Bytes::from(vec![b'x'; 1024 * 1024]);
    chunks.send(chunk.clone()).await.unwrap();
    // The first megabyte reaches the backend while the client still holds the other nine:
    // the balancer streams instead of buffering the whole body.
    within("the first chunk at the backend", async {
        while backend.state.received.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    for _ in 1..10 {
        chunks.send(chunk.clone()).await.unwrap();
    }
    drop(chunks);
    assert_eq!(upload_answer(upload).await, "10485760");
}

#[tokio::test]
async fn an_upload_that_keeps_moving_outlasts_the_request_timeout() {
    let lb = balancer_with_request_timeout(Duration::from_secs(1)).await;
    let [_backend] = healthy_backends(&lb, ["web"]).await; // serves until the test ends
    let (chunks, upload) = start_upload(&lb, Some(12 * 64 * 1024));
    // Three seconds of upload, a chunk every quarter second: the timeout is for silence,
    // not for the whole exchange.
    for _ in 0..12 {
        chunks
            .send(Bytes::from(vec![b'x'; 64 * 1024]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(chunks);
    assert_eq!(upload_answer(upload).await, (12 * 64 * 1024).to_string());
}

#[tokio::test]
async fn a_stalled_upload_is_504_after_the_request_timeout() {
    let lb = balancer_with_request_timeout(Duration::from_millis(500)).await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let (chunks, upload) = start_upload(&lb, Some(2 * 64 * 1024));
    chunks
        .send(Bytes::from(vec![b'x'; 64 * 1024]))
        .await
        .unwrap();
    // The second half never comes; the sender stays open.
    let response = within("the 504", upload).await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(backend.hits(), 0);
    drop(chunks);
}

type Upload = tokio::task::JoinHandle<
    Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
>;

/// Starts `POST /upload` of `length` bytes (chunked when `None`) whose chunks the test then
/// sends (and closes by dropping the sender).
fn start_upload(lb: &Balancer, length: Option<usize>) -> (mpsc::Sender<Bytes>, Upload) {
    let (chunks, receiver) = mpsc::channel::<Bytes>(4);
    let client: Client<HttpConnector, _> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = hyper::Request::post(format!("{}/upload", lb.url()));
    if let Some(length) = length {
        request = request.header("content-length", length.to_string());
    }
    let request = request.body(ChannelBody(receiver)).unwrap();
    (chunks, tokio::spawn(client.request(request)))
}

#[tokio::test]
async fn a_chunked_upload_arrives_whole() {
    let lb = balancer().await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let (chunks, upload) = start_upload(&lb, None);
    for size in [1, 100_000, 7, 65_536] {
        chunks.send(Bytes::from(vec![b'x'; size])).await.unwrap();
    }
    drop(chunks);
    assert_eq!(upload_answer(upload).await, "165544");
    assert_eq!(backend.state.received.load(Ordering::SeqCst), 165_544);
}

/// The backend's answer to an upload (the bytes it counted); the status must be 200.
async fn upload_answer(upload: Upload) -> String {
    let response = within("the upload response", upload)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// A request body fed chunk by chunk by the test.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

#[tokio::test]
async fn least_outstanding_requests_avoids_the_busy_target() {
    let lb = balancer_with(vec![
        group("api"),
        TargetGroupConfig {
            algorithm: Algorithm::LeastOutstandingRequests,
            ..group("web")
        },
    ])
    .await;
    let [one, two] = healthy_backends(&lb, ["one", "two"]).await;

    let held = hold_request(&lb, &[&one, &two]).await;
    let (busy, idle) = if one.holding() == 1 {
        (&one, &two)
    } else {
        (&two, &one)
    };
    for _ in 0..5 {
        assert!(get(&lb, "/").await.body.starts_with(&idle.state.name));
    }
    busy.release_one();
    assert_eq!(
        within("the held request", held).await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn set_rules_switches_traffic_by_weight() {
    let lb = balancer_with(vec![group("api"), group("web"), group("green")]).await;
    let [blue, green] = healthy_backends_in(&lb, [("web", "blue"), ("green", "green")]).await;
    assert!(get(&lb, "/").await.body.starts_with("blue"));

    // Canary: both sides get traffic.
    lb.set_rules(vec![], Forward::weighted([("web", 1), ("green", 1)]))
        .unwrap();
    for _ in 0..60 {
        assert_eq!(get(&lb, "/").await.status, StatusCode::OK);
    }
    assert!(
        blue.hits() > 1 && green.hits() > 0,
        "{} / {}",
        blue.hits(),
        green.hits()
    );

    // Cut over: weight 0 gets nothing.
    lb.set_rules(vec![], Forward::weighted([("web", 0), ("green", 5)]))
        .unwrap();
    let blue_hits = blue.hits();
    for _ in 0..10 {
        assert!(get(&lb, "/").await.body.starts_with("green"));
    }
    assert_eq!(blue.hits(), blue_hits);

    // A bad table is refused and the current one stays.
    assert!(lb.set_rules(vec![], Forward::to("missing")).is_err());
    assert!(get(&lb, "/").await.body.starts_with("green"));
}

fn weights<const N: usize>(pairs: [(&str, u32); N]) -> Vec<WeightedTargetGroup> {
    pairs
        .into_iter()
        .map(|(name, weight)| WeightedTargetGroup {
            name: name.to_owned(),
            weight,
        })
        .collect()
}

#[tokio::test]
async fn set_rule_weights_shifts_one_rule_and_a_retired_group_can_be_removed() {
    let lb = balancer_with(vec![group("api"), group("web"), group("green")]).await;
    let [api, blue, green] =
        healthy_backends_in(&lb, [("api", "api"), ("web", "blue"), ("green", "green")]).await;

    // Green joins the default rule at weight 0: it is named but receives nothing.
    lb.set_rule_weights(RuleRef::Default, &weights([("green", 0)]))
        .unwrap();
    for _ in 0..10 {
        assert!(get(&lb, "/").await.body.starts_with("blue"));
    }
    assert_eq!(green.hits(), 0);

    // All at once to green (blue/green): the `/api/*` rule is untouched.
    lb.set_rule_weights(RuleRef::Default, &weights([("web", 0), ("green", 1)]))
        .unwrap();
    let blue_hits = blue.hits();
    for _ in 0..10 {
        assert!(get(&lb, "/").await.body.starts_with("green"));
        assert!(get(&lb, "/api/x").await.body.starts_with("api"));
    }
    assert_eq!(blue.hits(), blue_hits);
    assert_eq!(api.hits(), 10);
    assert_eq!(
        lb.rule_weights(),
        vec![
            (RuleRef::Priority(10), Forward::to("api")),
            (
                RuleRef::Default,
                Forward::weighted([("web", 0), ("green", 1)])
            ),
        ]
    );

    // Refusals leave the routing as it was.
    assert!(matches!(
        lb.set_rule_weights(RuleRef::Priority(99), &weights([("green", 1)])),
        Err(BalancerError::UnknownRule { .. })
    ));
    assert!(matches!(
        lb.set_rule_weights(RuleRef::Default, &weights([("green", 0)])),
        Err(BalancerError::EmptyForward)
    ));
    assert!(matches!(
        lb.remove_target_group("web"),
        Err(BalancerError::TargetGroupInUse {
            rule: RuleRef::Default,
            ..
        })
    ));
    assert!(get(&lb, "/").await.body.starts_with("green"));

    // Once no rule names blue, its group goes, with its targets and their health checks.
    lb.set_rules(
        vec![Rule::forward(10, ["/api/*"], "api")],
        Forward::to("green"),
    )
    .unwrap();
    lb.remove_target_group("web").unwrap();
    assert!(
        lb.target_health().iter().all(|t| t.target_group != "web"),
        "{:?}",
        lb.target_health()
    );
    within(
        "waiting for a removed group's target",
        lb.wait_drained("web", blue.addr),
    )
    .await;
    assert!(matches!(
        lb.remove_target_group("web"),
        Err(BalancerError::UnknownTargetGroup { .. })
    ));
    assert!(matches!(
        lb.set_rule_weights(RuleRef::Default, &weights([("web", 1)])),
        Err(BalancerError::UnknownTargetGroup { .. })
    ));
    assert!(get(&lb, "/").await.body.starts_with("green"));
}

/// What `berth status` shows of each target group's weight, read through the router.
#[tokio::test]
async fn the_router_reports_each_target_groups_weight_per_rule() {
    let lb = balancer_with(vec![group("api"), group("web"), group("green")]).await;
    let router = BalancerRouter::new(lb.clone());
    let seen = |tg: &str| -> Vec<(String, u32, f64)> {
        router
            .traffic_weights(tg)
            .into_iter()
            .map(|w| (w.rule, w.weight, w.percent))
            .collect()
    };
    assert_eq!(seen("api"), [("priority 10".to_owned(), 1, 100.0)]);
    assert_eq!(seen("web"), [("default".to_owned(), 1, 100.0)]);
    assert_eq!(seen("green"), []);
    lb.set_rule_weights(RuleRef::Default, &weights([("web", 950), ("green", 50)]))
        .unwrap();
    assert_eq!(seen("web"), [("default".to_owned(), 950, 95.0)]);
    assert_eq!(seen("green"), [("default".to_owned(), 50, 5.0)]);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let lb = balancer().await;
    let [backend] = healthy_backends(&lb, ["web"]).await;
    let url = lb.url();
    let held = hold_request(&lb, &[&backend]).await;
    let shutdown = tokio::spawn(lb.shutdown());
    // New connections are refused once the listener is closed.
    within("the listener to close", async {
        while tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(!shutdown.is_finished());
    backend.release_one();
    let reply = within("the held request", held).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    within("shutdown", shutdown).await.unwrap();
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let first = balancer().await;
    let config = ListenerConfig {
        rules: vec![],
        default_action: Forward::to("web"),
        target_groups: vec![group("web")],
        idle_timeout: Duration::from_secs(60),
    };
    let error = Balancer::bind(first.local_addr(), config)
        .await
        .unwrap_err();
    assert!(
        matches!(error, berth_local::balancer::BalancerError::Bind { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn more_than_30_forwarded_addresses_is_463() {
    let lb = balancer().await;
    let backend = Backend::start("web").await;
    lb.register("web", backend.addr).unwrap();
    let addresses = vec!["198.51.100.1"; 31].join(", ");
    let reply = get_with(&lb, "/", &[("x-forwarded-for", addresses.as_str())]).await;
    assert_eq!(reply.status.as_u16(), 463);
    assert_eq!(backend.hits(), 0);
}

#[tokio::test]
async fn bad_configuration_is_rejected() {
    let bad_timeout = TargetGroupConfig {
        health_check: HealthCheckConfig {
            timeout: Duration::from_secs(5),
            interval: Duration::from_secs(5),
            ..fast_checks()
        },
        ..group("web")
    };
    let config = ListenerConfig {
        rules: vec![],
        default_action: Forward::to("web"),
        target_groups: vec![bad_timeout],
        idle_timeout: Duration::from_secs(60),
    };
    let error = Balancer::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("must be smaller than the interval"),
        "{error}"
    );

    let duplicate = ListenerConfig {
        rules: vec![],
        default_action: Forward::to("web"),
        target_groups: vec![group("web"), group("web")],
        idle_timeout: Duration::from_secs(60),
    };
    assert!(
        Balancer::bind("127.0.0.1:0".parse().unwrap(), duplicate)
            .await
            .is_err()
    );
}
