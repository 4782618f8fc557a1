//! Operating a provisioned stack against moto: `scale`, `param`, `status`, `logs`.

use std::time::Duration;

use berth_aws::{Error, PutParam};
use berth_spec::ParameterType;
use berth_testkit::Moto;

use crate::deploy::ready;
use crate::lifecycle::{fast, up};
use crate::support::{engine, example_stack, sdk_config};

async fn desired_count(sdk: &aws_config::SdkConfig, cluster: &str, service: &str) -> i32 {
    let out = aws_sdk_ecs::Client::new(sdk)
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .expect("describe services");
    out.services()[0].desired_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_sets_the_desired_count_and_names_a_missing_service() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;

    // Before any image the services are not created: said, with what creates them.
    up(&engine, &stack, fast()).await.expect("first up");
    let error = engine
        .scale(&stack, "backend", 3)
        .await
        .expect_err("no service yet");
    assert!(
        error
            .to_string()
            .contains("service backend-service does not exist in cluster"),
        "{error}"
    );
    let unknown = engine
        .scale(&stack, "nosuch", 3)
        .await
        .expect_err("an unknown service");
    assert!(
        unknown.to_string().contains("no service `nosuch`"),
        "{unknown}"
    );

    ready(&sdk, &engine, &stack).await;
    let backend = stack.service("backend").expect("backend").clone();
    assert_eq!(
        desired_count(&sdk, &stack.cluster, &backend.service_name).await,
        backend.desired_count as i32
    );
    engine.recorder().clear();
    let scaled = engine.scale(&stack, "backend", 3).await.expect("scale");
    assert_eq!(engine.recorder().mutating(), ["ECS.UpdateService"]);
    assert_eq!(scaled.desired_count, 3);
    assert_eq!(scaled.stack_count, Some(backend.desired_count));
    assert_eq!(
        desired_count(&sdk, &stack.cluster, &backend.service_name).await,
        3
    );
    // The revision stays: only the count changed.
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    let lines = crate::support::plan_lines(&plan);
    assert_eq!(
        lines,
        [format!(
            "service/backend desired_count: \"3\" -> \"{}\"",
            backend.desired_count
        )],
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_round_trip_a_secure_string_and_list_names_only() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;
    let secure = PutParam {
        kind: Some(ParameterType::SecureString),
        ..PutParam::default()
    };
    let version = engine
        .param_put("/ecs/api/token", "s3cr3t value", &secure)
        .await
        .expect("put");
    assert_eq!(version, 1);

    // As SSM holds it: a SecureString under the default key.
    let raw = aws_sdk_ssm::Client::new(&sdk)
        .get_parameter()
        .name("/ecs/api/token")
        .with_decryption(true)
        .send()
        .await
        .expect("get");
    let raw = raw.parameter().expect("parameter");
    assert_eq!(
        raw.r#type(),
        Some(&aws_sdk_ssm::types::ParameterType::SecureString)
    );
    assert_eq!(raw.value(), Some("s3cr3t value"));

    let hidden = engine
        .param_get("/ecs/api/token", false)
        .await
        .expect("get");
    assert_eq!(hidden.kind, ParameterType::SecureString);
    assert_eq!(hidden.value, None);
    assert!(!format!("{hidden:?}").contains("s3cr3t"), "{hidden:?}");
    let shown = engine.param_get("/ecs/api/token", true).await.expect("get");
    assert_eq!(shown.value.as_deref(), Some("s3cr3t value"));
    assert!(!format!("{shown:?}").contains("s3cr3t"), "{shown:?}");

    // An existing name without --overwrite is refused; with it, the type is kept.
    let exists = engine
        .param_put("/ecs/api/token", "other", &PutParam::default())
        .await
        .expect_err("exists");
    assert!(
        matches!(exists, Error::ParameterExists { .. }),
        "{exists:?}"
    );
    let overwrite = PutParam {
        overwrite: true,
        ..PutParam::default()
    };
    let version = engine
        .param_put("/ecs/api/token", "second", &overwrite)
        .await
        .expect("overwrite");
    assert_eq!(version, 2);
    let history = engine
        .param_history("/ecs/api/token", true)
        .await
        .expect("history");
    let seen: Vec<(u64, ParameterType, Option<&str>)> = history
        .iter()
        .map(|p| (p.version, p.kind, p.value.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, ParameterType::SecureString, Some("s3cr3t value")),
            (2, ParameterType::SecureString, Some("second")),
        ]
    );
    let first = engine
        .param_get("/ecs/api/token:1", true)
        .await
        .expect("version 1");
    assert_eq!(first.value.as_deref(), Some("s3cr3t value"));

    engine
        .param_put("/ecs/api/url", "http://x", &PutParam::default())
        .await
        .expect("a String");
    engine
        .param_put("/ecs/api/deep/level", "y", &PutParam::default())
        .await
        .expect("a deeper one");
    let names = |list: Vec<berth_aws::ParamSummary>| -> Vec<(String, ParameterType)> {
        list.into_iter().map(|p| (p.name, p.kind)).collect()
    };
    let one_level = engine
        .param_list(Some("/ecs/api"), false)
        .await
        .expect("list");
    assert_eq!(
        names(one_level),
        [
            ("/ecs/api/token".to_owned(), ParameterType::SecureString),
            ("/ecs/api/url".to_owned(), ParameterType::String),
        ]
    );
    let all = engine.param_list(None, false).await.expect("list");
    assert_eq!(all.len(), 3, "{all:?}");

    engine.param_delete("/ecs/api/token").await.expect("rm");
    let gone = engine
        .param_get("/ecs/api/token", false)
        .await
        .expect_err("deleted");
    assert!(gone.to_string().contains("ParameterNotFound"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_services_deployments_and_target_health() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;

    // Before the images: the services are reported missing, the ALB is there.
    up(&engine, &stack, fast()).await.expect("first up");
    let status = engine.status(&stack).await.expect("status");
    assert!(status.services.is_empty(), "{status:?}");
    assert_eq!(status.missing, ["frontend-service", "backend-service"]);
    assert!(
        status
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://")),
        "{status:?}"
    );

    ready(&sdk, &engine, &stack).await;
    // moto registers no task as a target: one registered by hand stands for it.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let groups = elb
        .describe_target_groups()
        .names("backend-tg")
        .send()
        .await
        .expect("target group");
    let tg = groups.target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    elb.register_targets()
        .target_group_arn(&tg)
        .targets(
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id("10.0.3.12")
                .port(3001)
                .build(),
        )
        .send()
        .await
        .expect("register");

    engine.recorder().clear();
    let status = engine.status(&stack).await.expect("status");
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());
    assert!(status.missing.is_empty(), "{status:?}");
    let names: Vec<&str> = status.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["frontend-service", "backend-service"]);
    let backend = &status.services[1];
    assert_eq!(backend.desired_count, 2);
    assert_eq!(backend.target_group.as_deref(), Some("backend-tg"));
    let primary = &backend.deployments[0];
    assert_eq!(
        primary.status,
        berth_spec::status::DeploymentStatus::Primary
    );
    assert_eq!(primary.task_definition, "backend-task:1");
    let group = status
        .target_groups
        .iter()
        .find(|g| g.name == "backend-tg")
        .expect("backend-tg");
    assert_eq!(group.service, "backend-service");
    let targets: Vec<(&str, berth_spec::status::TargetState)> = group
        .targets
        .iter()
        .map(|t| (t.target.as_str(), t.state))
        .collect();
    assert_eq!(
        targets,
        [("10.0.3.12:3001", berth_spec::status::TargetState::Healthy)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_merge_every_stream_in_time_order() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;
    let backend = stack.service("backend").expect("backend").clone();

    let missing = engine
        .logs(&stack, "backend", None, None)
        .await
        .expect_err("no log group yet");
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    up(&engine, &stack, fast()).await.expect("first up");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let group = &backend.logs.group;
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    // Two tasks' streams, each put out of order with the other.
    let streams = [
        ("ecs/backend-app/bbbb", [(2, "b2"), (4, "b4 ERROR")]),
        ("ecs/backend-app/aaaa", [(1, "a1"), (3, "a3 ERROR")]),
    ];
    for (stream, events) in streams {
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .expect("stream");
        for (at, message) in events {
            logs.put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(base + at * 1000)
                        .message(message)
                        .build()
                        .expect("event"),
                )
                .send()
                .await
                .expect("put");
        }
    }
    let seen = |lines: Vec<berth_aws::LogLine>| -> Vec<(i64, String, String)> {
        lines
            .into_iter()
            .map(|l| ((l.timestamp - base) / 1000, l.stream, l.message))
            .collect()
    };
    let all = engine
        .logs(&stack, "backend", None, None)
        .await
        .expect("logs");
    let line = |at: i64, stream: &str, message: &str| (at, stream.to_owned(), message.to_owned());
    assert_eq!(
        seen(all),
        [
            line(1, "ecs/backend-app/aaaa", "a1"),
            line(2, "ecs/backend-app/bbbb", "b2"),
            line(3, "ecs/backend-app/aaaa", "a3 ERROR"),
            line(4, "ecs/backend-app/bbbb", "b4 ERROR"),
        ]
    );
    let since = engine
        .logs(&stack, "backend", Some(base + 2500), None)
        .await
        .expect("logs since");
    assert_eq!(
        seen(since),
        [
            line(3, "ecs/backend-app/aaaa", "a3 ERROR"),
            line(4, "ecs/backend-app/bbbb", "b4 ERROR"),
        ]
    );
    let filtered = engine
        .logs(&stack, "backend", None, Some("ERROR"))
        .await
        .expect("logs filtered");
    assert_eq!(
        seen(filtered),
        [
            line(3, "ecs/backend-app/aaaa", "a3 ERROR"),
            line(4, "ecs/backend-app/bbbb", "b4 ERROR"),
        ]
    );
}

/// The next followed event, as (milliseconds after `base`, stream, message), within 10 s.
async fn next_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<berth_aws::Result<berth_aws::LogLine>>,
    base: i64,
) -> (i64, String, String) {
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the follow goes on")
        .expect("no error");
    (line.timestamp - base, line.stream, line.message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_yields_each_new_event_once_in_time_order() {
    use futures_util::StreamExt;

    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let stack = example_stack();
    let engine = engine(&stack, &sdk).await;
    up(&engine, &stack, fast()).await.expect("first up");
    let group = stack
        .service("backend")
        .expect("backend")
        .logs
        .group
        .clone();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let put = |stream: &'static str, at: i64, message: &'static str| {
        let logs = logs.clone();
        let group = group.clone();
        async move {
            logs.put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(base + at)
                        .message(message)
                        .build()
                        .expect("event"),
                )
                .send()
                .await
                .expect("put");
        }
    };
    for stream in ["ecs/backend-app/aaaa", "ecs/backend-app/bbbb"] {
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream)
            .send()
            .await
            .expect("stream");
    }
    // Before the follow starts: shown once, first.
    put("ecs/backend-app/aaaa", 0, "before").await;

    let follower = engine
        .follow_logs(&stack, "backend", Some(base), None)
        .expect("follower");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let following = tokio::spawn(async move {
        let mut lines = std::pin::pin!(follower.into_stream(Duration::from_millis(200)));
        while let Some(line) = lines.next().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = |at: i64, stream: &str, message: &str| (at, stream.to_owned(), message.to_owned());
    assert_eq!(
        next_line(&mut rx, base).await,
        line(0, "ecs/backend-app/aaaa", "before")
    );

    // Two streams, each put out of order with the other within one poll: merged in time.
    put("ecs/backend-app/bbbb", 2000, "b2").await;
    put("ecs/backend-app/aaaa", 1000, "a1").await;
    put("ecs/backend-app/aaaa", 3000, "a3").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_line(&mut rx, base).await);
    }
    // A poll may have run between two puts: what matters is each arrives once, and those of
    // one poll in time order; so the first event may only be a1 or b2.
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            line(1000, "ecs/backend-app/aaaa", "a1"),
            line(2000, "ecs/backend-app/bbbb", "b2"),
            line(3000, "ecs/backend-app/aaaa", "a3"),
        ]
    );
    assert!(
        seen == sorted || seen[0].2 == "b2",
        "out of order beyond a poll boundary: {seen:?}"
    );

    // Ingested late (older than a3, as the awslogs driver's batches can be): still once.
    put("ecs/backend-app/bbbb", 2500, "b2.5 late").await;
    assert_eq!(
        next_line(&mut rx, base).await,
        line(2500, "ecs/backend-app/bbbb", "b2.5 late")
    );
    // Two events of one millisecond in two streams: both, once (their ids differ).
    put("ecs/backend-app/aaaa", 4000, "a4").await;
    put("ecs/backend-app/bbbb", 4000, "b4").await;
    let mut same = vec![
        next_line(&mut rx, base).await,
        next_line(&mut rx, base).await,
    ];
    same.sort();
    assert_eq!(
        same,
        [
            line(4000, "ecs/backend-app/aaaa", "a4"),
            line(4000, "ecs/backend-app/bbbb", "b4"),
        ]
    );
    // Nothing is repeated by the polls that follow.
    let extra = tokio::time::timeout(Duration::from_millis(800), rx.recv()).await;
    assert!(extra.is_err(), "a repeated event: {extra:?}");

    // Stopped: the task ends and nothing more arrives.
    following.abort();
    let ended = tokio::time::timeout(Duration::from_secs(5), following).await;
    assert!(
        ended.expect("stops within 5 s").unwrap_err().is_cancelled(),
        "the follow was cancelled"
    );
    assert!(rx.recv().await.is_none());
}
