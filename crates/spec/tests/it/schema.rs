//! Valid variants of the schema resolve to the expected plain values.

use std::path::Path;
use std::time::Duration;

use berth_spec::{
    DatabaseKind, Generator, IngressSource, ParameterValue, SecurityGroupRole, Stack, Strategy,
};

fn parse(text: &str) -> Stack {
    match berth_spec::parse(text, "berth.toml", Path::new("/app")) {
        Ok(stack) => stack,
        Err(e) => panic!("{e}: {:#?}", e.problems()),
    }
}

#[test]
fn parameters_as_an_array_of_tables() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[services.api]
port = 3001
secrets = { TOKEN = "/demo/TOKEN" }
[[parameters]]
name = "/demo/TOKEN"
type = "SecureString"
generate = "password"
[[parameters]]
name = "/demo/PLAIN"
value = "x"
"#,
    );
    assert_eq!(
        stack.parameters[0].value,
        ParameterValue::Generated {
            generator: Generator::Password
        }
    );
    assert_eq!(stack.parameters[1].name, "/demo/PLAIN");
    assert_eq!(
        stack.iam.execution_role.parameters,
        ["/demo/TOKEN", "/demo/PLAIN"]
    );
}

/// S3.3–S3.7, S3.12: the traffic-shifting strategies with their defaults, a derived
/// alternate target group, and the wiring as written.
#[test]
fn traffic_shifting_strategies_with_defaults_and_wiring() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[load_balancer]
default_service = "a"
[services.a]
port = 1
deployment = { strategy = "canary", canary_percent = 10, canary_bake = "2m" }
[services.b]
port = 2
[services.b.deployment]
strategy = "linear"
linear_step_percent = 25
alternate_target_group = "b-green"
test_listener_port = 9001
hook_timeout = "2m"
hooks = { post_test_traffic_shift = "curl -f http://127.0.0.1:9001/", pre_scale_up = "true" }
[services.c]
port = 3
deployment = { strategy = "blue_green" }
"#,
    );
    let minutes = |m: u64| Duration::from_secs(60 * m);
    let a = &stack.service("a").unwrap().deployment;
    assert_eq!(
        a.strategy,
        Strategy::Canary {
            percent: 10.0,
            canary_bake: minutes(2),
            bake_time: minutes(5)
        }
    );
    let wiring = a.traffic.as_ref().unwrap();
    assert_eq!(wiring.alternate_target_group, "a-tg-alt");
    assert_eq!(wiring.test_listener_port, None);
    assert!(wiring.hooks.is_empty());
    assert_eq!(wiring.hook_timeout, minutes(1440));
    let b = &stack.service("b").unwrap().deployment;
    assert_eq!(
        b.strategy,
        Strategy::Linear {
            step_percent: 25.0,
            step_bake: minutes(6),
            bake_time: minutes(5)
        }
    );
    let wiring = b.traffic.as_ref().unwrap();
    assert_eq!(wiring.alternate_target_group, "b-green");
    assert_eq!(wiring.test_listener_port, Some(9001));
    assert_eq!(wiring.hook_timeout, minutes(2));
    assert_eq!(
        wiring.hooks.keys().collect::<Vec<_>>(),
        ["POST_TEST_TRAFFIC_SHIFT", "PRE_SCALE_UP"]
    );
    let c = stack.service("c").unwrap();
    assert_eq!(
        c.deployment.strategy,
        Strategy::BlueGreen {
            bake_time: minutes(5)
        }
    );
    assert_eq!(c.alternate_target_group(), "c-tg-alt");
    assert_eq!(
        stack
            .service("a")
            .unwrap()
            .deployment
            .traffic
            .as_ref()
            .map(|t| t.test_listener_port),
        Some(None)
    );
}

/// S3.7, S3.11, S3.12: the traffic-shifting wiring is checked where it is written, and
/// refused under `rolling`, which would ignore it.
#[test]
fn traffic_shifting_keys_are_checked_and_do_not_apply_to_rolling() {
    let text = r#"
[stack]
name = "demo"
[load_balancer]
default_service = "a"
[services.a]
port = 1
deployment = { alternate_target_group = "a-green", test_listener_port = 9000, hooks = { pre_scale_up = "true" }, hook_timeout = "5m" }
[services.b]
port = 2
[services.b.deployment]
strategy = "canary"
alternate_target_group = "b-tg"
test_listener_port = 0
hook_timeout = "30s"
hooks = { bake_time = "true", post_test_trafic_shift = "true", production_traffic_shift = "" }
"#;
    let error = berth_spec::parse(text, "berth.toml", Path::new("/app")).unwrap_err();
    let found: Vec<(&str, String, usize)> = error
        .problems()
        .iter()
        .filter(|p| p.code != "berth::not_supported_yet")
        .map(|p| (p.code, p.message.clone(), p.line))
        .collect();
    let misplaced = |key: &str| {
        (
            "berth::misplaced_key",
            format!("`{key}` does not apply to the \"rolling\" strategy"),
            8,
        )
    };
    assert_eq!(
        found,
        [
            misplaced("alternate_target_group"),
            misplaced("test_listener_port"),
            misplaced("hooks"),
            misplaced("hook_timeout"),
            (
                "berth::bad_value",
                "the alternate target group must differ from the service's target group".into(),
                13
            ),
            (
                "berth::out_of_range",
                "`services.b.deployment.test_listener_port` must be between 1 and 65535".into(),
                14
            ),
            (
                "berth::out_of_range",
                "`services.b.deployment.hook_timeout` must be between 1m and 14d".into(),
                15
            ),
            (
                "berth::bad_value",
                "a lifecycle hook cannot attach to `bake_time`".into(),
                16
            ),
            (
                "berth::unknown_key",
                "unknown key `post_test_trafic_shift` in `services.b.deployment.hooks`".into(),
                16
            ),
            (
                "berth::empty",
                "`services.b.deployment.hooks.production_traffic_shift` cannot be empty".into(),
                16
            ),
        ]
    );
}

#[test]
fn rolling_with_its_bounds_and_circuit_breaker() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[services.c]
port = 3
deployment = { strategy = "rolling", minimum_healthy_percent = 50, circuit_breaker = { rollback = false } }
"#,
    );
    let c = &stack.service("c").unwrap().deployment;
    assert_eq!(c.strategy, Strategy::Rolling);
    assert_eq!(c.minimum_healthy_percent, 50);
    assert!(c.circuit_breaker.enable && !c.circuit_breaker.rollback);
}

/// ECS accepts a container health check whose timeout is not below its interval (unlike a
/// target group's): the next check waits for the one running.
#[test]
fn a_container_health_check_timeout_may_reach_its_interval() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[services.api]
port = 3001
container_health_check = { command = ["CMD-SHELL", "true"], interval = "5s", timeout = "6s" }
"#,
    );
    let check = stack
        .service("api")
        .unwrap()
        .container_health_check
        .as_ref()
        .unwrap();
    assert_eq!(
        (check.interval, check.timeout),
        (Duration::from_secs(5), Duration::from_secs(6))
    );
}

#[test]
fn external_database_https_and_extra_rules() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[database]
name = "app"
url = "postgres://db.example.com:5432/app"
password_parameter = "/demo/DB_PASSWORD"
[load_balancer]
https = { certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc" }
[security_groups]
rules = [{ group = "ecs", port = 9090, from = "10.0.0.0/8" }, { group = "alb", port = 8443, from = "ecs" }]
[services.web]
port = 8080
[parameters."/demo/DB_PASSWORD"]
type = "SecureString"
"#,
    );
    let db = stack.database.as_ref().unwrap();
    assert!(
        matches!(&db.kind, DatabaseKind::External { url } if url == "postgres://db.example.com:5432/app")
    );
    // An external database's password is the operator's to set.
    assert_eq!(
        stack.parameter("/demo/DB_PASSWORD").unwrap().value,
        ParameterValue::Operator
    );
    assert_eq!(stack.operator_parameters().count(), 1);
    assert!(stack.security_groups.rds.is_none());
    let https = stack.load_balancer.https.as_ref().unwrap();
    assert_eq!((https.port, https.redirect_http), (443, true));
    let extra = stack.security_groups.ecs.ingress.last().unwrap();
    assert_eq!(extra.port, 9090);
    assert_eq!(
        stack.security_groups.alb.ingress.last().unwrap().source,
        IngressSource::Group(SecurityGroupRole::Ecs)
    );
}

#[test]
fn network_local_environment_and_build_paths() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[environments.local]
listen = "0.0.0.0:9000"
health_check_interval = "500ms"
health_check_timeout = "200ms"
state_dir = "state"
[network]
cidr = "172.16.0.0/20"
availability_zones = 3
nat = "single"
[services.web]
port = 8080
build = { context = "../src", command = "make", artifact = "out/web" }
"#,
    );
    assert_eq!(
        stack
            .network
            .public_subnets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["172.16.0.0/24", "172.16.1.0/24", "172.16.2.0/24"]
    );
    assert_eq!(
        stack.network.private_subnets[0].to_string(),
        "172.16.8.0/24"
    );
    let local = stack.environment("local").unwrap().as_local().unwrap();
    assert_eq!(local.listen.port(), 9000);
    assert_eq!(local.health_check_interval, Duration::from_millis(500));
    assert_eq!(stack.state_dir(local), Path::new("/app/state"));
    let build = stack.service("web").unwrap().build.as_ref().unwrap();
    assert_eq!(build.context, Path::new("/src"));
    assert_eq!(build.artifact, Path::new("/src/out/web"));
}

/// `[ci.github]`: the roles are derived from the stack's name, the branch defaults to main,
/// and the environment to the stack's only AWS environment.
#[test]
fn ci_github_defaults() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[environments.production]
runtime = "aws"
region = "us-east-1"
[services.api]
port = 3001
[ci.github]
repository = "acme/demo"
install = "cargo install --locked berth-cli --features aws"
paths = { api = ["apps/api/**", "Cargo.lock"] }
"#,
    );
    let ci = stack.ci.expect("a [ci.github] section");
    assert_eq!(ci.repository.as_deref(), Some("acme/demo"));
    assert_eq!(ci.branch, "main");
    assert_eq!(ci.environment, "production");
    assert_eq!(ci.deploy_role, "demo-github-deploy");
    assert_eq!(ci.plan_role, "demo-github-plan");
    assert_eq!(ci.runs_on, "ubuntu-24.04");
    assert_eq!(ci.paths["api"], ["apps/api/**", "Cargo.lock"]);
}

/// Target tracking (S6.1, S6.4): min, max, one metric and both cooldowns are read, with
/// ECS's 300 s cooldowns by default.
#[test]
fn autoscaling_is_read_with_ecs_default_cooldowns() {
    let text = r#"
[stack]
name = "demo"
[load_balancer]
default_service = "a"
[services.a]
port = 1
desired_count = 1
autoscaling = { min = 1, max = 4, target = { requests_per_target = 500 }, scale_in_cooldown = "1m" }
[services.b]
port = 2
autoscaling = { min = 0, max = 3, target = { cpu_percent = 50 } }
"#;
    let stack = berth_spec::parse(text, "berth.toml", Path::new("/app")).unwrap();
    let a = stack.services[0].autoscaling.clone().unwrap();
    assert_eq!((a.min, a.max), (1, 4));
    assert_eq!(a.target, berth_spec::ScalingTarget::RequestsPerTarget(500));
    assert_eq!(a.scale_in_cooldown, std::time::Duration::from_secs(60));
    assert_eq!(a.scale_out_cooldown, std::time::Duration::from_secs(300));
    let b = stack.services[1].autoscaling.clone().unwrap();
    assert_eq!(b.target, berth_spec::ScalingTarget::CpuPercent(50.0));
    assert_eq!(b.scale_in_cooldown, std::time::Duration::from_secs(300));
}

#[test]
fn a_certificate_arn_that_is_no_certificate_is_refused() {
    let text = r#"
[stack]
name = "demo"
[load_balancer]
https = { certificate_arn = "arn:aws:iam::123456789012:role/web" }
[services.web]
port = 8080
"#;
    let err = berth_spec::parse(text, "berth.toml", Path::new("/app")).unwrap_err();
    let messages: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("a certificate ARN is arn:aws:acm:")),
        "{messages:?}"
    );
}

#[test]
fn image_builds_and_image_references() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[load_balancer]
default_service = "web"
[services.api]
port = 3001
routes = [{ path = "/api/*", priority = 1 }]
build = { context = "..", command = "make", artifact = "out/api", dockerfile = "apps/api/Dockerfile", target = "runtime", args = { PROFILE = "berth" } }
[services.web]
port = 80
build = { context = "src", dockerfile = "Dockerfile" }
[services.proxy]
port = 80
routes = [{ path = "/p/*", priority = 2 }]
image = "docker.io/library/nginx:1.27"
"#,
    );
    let api = stack.service("api").unwrap();
    assert_eq!(api.build.as_ref().unwrap().artifact, Path::new("/out/api"));
    assert_eq!(
        api.image,
        Some(berth_spec::Image::Dockerfile(berth_spec::ImageBuild {
            context: "/".into(),
            dockerfile: "/apps/api/Dockerfile".into(),
            target: Some("runtime".into()),
            args: [("PROFILE".to_owned(), "berth".to_owned())].into(),
        }))
    );
    let web = stack.service("web").unwrap();
    assert_eq!(web.build, None, "an image build alone has no process build");
    assert!(matches!(
        &web.image,
        Some(berth_spec::Image::Dockerfile(b)) if b.dockerfile == Path::new("/app/src/Dockerfile")
    ));
    assert_eq!(
        stack.service("proxy").unwrap().image,
        Some(berth_spec::Image::Reference(
            "docker.io/library/nginx:1.27".into()
        ))
    );
}

#[test]
fn a_directory_artifact_runs_a_command_in_it() {
    let stack = parse(
        r#"
[stack]
name = "demo"
[services.web]
port = 80
build = { context = "site", command = "python3 -m py_compile server.py", artifact = "./", run = ["python3", "server.py", "--quiet"] }
"#,
    );
    let build = stack.service("web").unwrap().build.as_ref().unwrap();
    assert_eq!(build.artifact, Path::new("/app/site"));
    assert_eq!(
        build.run.as_deref(),
        Some(
            &[
                "python3".to_owned(),
                "server.py".to_owned(),
                "--quiet".to_owned()
            ][..]
        )
    );
}
