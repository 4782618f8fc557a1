//! The HTTPS listener against moto: with a certificate, 443 forwards by the stack's rules and
//! 80 answers with a 301 to HTTPS; turning the redirect off or removing HTTPS converges.
//! The certificate is an IAM server certificate uploaded to moto: moto checks that the
//! certificate exists (ACM or IAM), as AWS does, and IAM's is the one the SDK crates the
//! engine already depends on can make.

use aws_sdk_elasticloadbalancingv2::types::{ActionTypeEnum, Listener, ProtocolEnum};
use berth_spec::Https;
use berth_testkit::Moto;

use crate::lifecycle::{down, fast, up};
use crate::support::{engine, example_stack, plan_lines, sdk_config};

async fn upload_certificate(sdk: &aws_config::SdkConfig) -> String {
    let out = aws_sdk_iam::Client::new(sdk)
        .upload_server_certificate()
        .server_certificate_name("berth-test")
        .certificate_body("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
        .private_key("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
        .send()
        .await
        .expect("upload a server certificate");
    out.server_certificate_metadata()
        .map(|m| m.arn().to_owned())
        .expect("certificate ARN")
}

async fn listeners(sdk: &aws_config::SdkConfig) -> Vec<Listener> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let lbs = elb
        .describe_load_balancers()
        .names("ecs-alb")
        .send()
        .await
        .expect("the ALB");
    let arn = lbs.load_balancers()[0]
        .load_balancer_arn()
        .expect("ALB ARN")
        .to_owned();
    let mut found = elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .expect("listeners")
        .listeners()
        .to_vec();
    found.sort_by_key(|l| l.port());
    found
}

/// The listener's non-default rules' path patterns.
async fn rule_paths(sdk: &aws_config::SdkConfig, listener: &Listener) -> Vec<String> {
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let rules = elb
        .describe_rules()
        .listener_arn(listener.listener_arn().expect("listener ARN"))
        .send()
        .await
        .expect("rules");
    rules
        .rules()
        .iter()
        .filter(|r| !r.is_default().unwrap_or(false))
        .flat_map(|r| r.conditions())
        .flat_map(|c| {
            c.path_pattern_config()
                .map(|p| p.values().to_vec())
                .unwrap_or_else(|| c.values().to_vec())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_with_http_redirect_converges() {
    let moto = Moto::start();
    let sdk = sdk_config(&moto).await;
    let certificate = upload_certificate(&sdk).await;
    let mut stack = example_stack();
    stack.load_balancer.https = Some(Https {
        port: 443,
        certificate_arn: certificate.clone(),
        redirect_http: true,
    });
    let engine = engine(&stack, &sdk).await;
    let outcome = up(&engine, &stack, fast()).await.expect("up");
    let url = outcome.url.expect("the site's URL");
    assert!(url.starts_with("https://ecs-alb-"), "{url}");

    let found = listeners(&sdk).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let (http, https) = (&found[0], &found[1]);
    assert_eq!(
        (http.port(), http.protocol()),
        (Some(80), Some(&ProtocolEnum::Http))
    );
    let redirect = &http.default_actions()[0];
    assert_eq!(redirect.r#type(), Some(&ActionTypeEnum::Redirect));
    let config = redirect.redirect_config().expect("redirect config");
    assert_eq!(
        (
            config.protocol(),
            config.port(),
            config.status_code().map(|c| c.as_str())
        ),
        (Some("HTTPS"), Some("443"), Some("HTTP_301"))
    );
    assert_eq!(rule_paths(&sdk, http).await, Vec::<String>::new());
    assert_eq!(
        (https.port(), https.protocol()),
        (Some(443), Some(&ProtocolEnum::Https))
    );
    assert_eq!(
        https.certificates()[0].certificate_arn(),
        Some(certificate.as_str())
    );
    let forward = &https.default_actions()[0];
    assert_eq!(forward.r#type(), Some(&ActionTypeEnum::Forward));
    assert!(
        forward
            .target_group_arn()
            .is_some_and(|arn| arn.contains(":targetgroup/frontend-tg/")),
        "{forward:?}"
    );
    assert_eq!(rule_paths(&sdk, https).await, ["/api/*"]);

    // Found again as it was made: nothing to do, not one mutating call.
    engine.recorder().clear();
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");
    up(&engine, &stack, fast()).await.expect("idle up");
    assert_eq!(engine.recorder().mutating(), Vec::<String>::new());

    // Without the redirect, 80 routes as 443 does.
    if let Some(h) = &mut stack.load_balancer.https {
        h.redirect_http = false;
    }
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(
        plan_lines(&plan),
        [
            r#"listener/http default_action: "redirect 301 to HTTPS:443" -> "forward to tg/frontend""#,
            r#"listener/http rules: "" -> "100 /api/* -> tg/backend""#,
        ]
    );
    up(&engine, &stack, fast())
        .await
        .expect("up without redirect");
    let found = listeners(&sdk).await;
    assert_eq!(
        found[0].default_actions()[0].r#type(),
        Some(&ActionTypeEnum::Forward)
    );
    assert_eq!(rule_paths(&sdk, &found[0]).await, ["/api/*"]);

    // Without HTTPS: its listener goes, nothing else changes.
    stack.load_balancer.https = None;
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert_eq!(plan_lines(&plan), ["listener/https Delete"]);
    up(&engine, &stack, fast()).await.expect("up without https");
    let found = listeners(&sdk).await;
    assert_eq!(
        found.iter().map(|l| l.port()).collect::<Vec<_>>(),
        [Some(80)]
    );
    let (_, _, plan) = engine.plan_up(&stack).await.expect("plan");
    assert!(plan.is_empty(), "{plan}");

    let mut options = fast();
    options.skip_final_snapshot = true;
    down(&engine, &stack, options).await;
    let snapshot = engine.discover(&stack).await.expect("discover");
    assert_eq!(snapshot.actual, Vec::new());
}
