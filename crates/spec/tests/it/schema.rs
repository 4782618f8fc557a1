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

/// What the stack file accepts is acted upon: strategies and autoscaling that no runtime
/// carries out yet are refused, each with its own place in the file, not read and ignored.
#[test]
fn strategies_other_than_rolling_and_autoscaling_are_refused_as_not_supported_yet() {
    let text = r#"
[stack]
name = "demo"
[load_balancer]
default_service = "a"
[services.a]
port = 1
deployment = { strategy = "canary", canary_percent = 10, canary_bake = "2m", bake_time = "1m" }
autoscaling = { min = 1, max = 4, target = { requests_per_target = 500 }, scale_in_cooldown = "1m" }
[services.b]
port = 2
deployment = { strategy = "linear", linear_step_percent = 25 }
[services.c]
port = 3
deployment = { strategy = "blue_green", minimum_healthy_percent = 50, circuit_breaker = { rollback = false } }
"#;
    let error = berth_spec::parse(text, "berth.toml", Path::new("/app")).unwrap_err();
    let found: Vec<(&str, &str, usize)> = error
        .problems()
        .iter()
        .map(|p| (p.code, p.message.as_str(), p.line))
        .collect();
    assert_eq!(
        found,
        [
            (
                "berth::not_supported_yet",
                "the \"canary\" strategy is not supported yet",
                8
            ),
            (
                "berth::not_supported_yet",
                "autoscaling is not supported yet",
                9
            ),
            (
                "berth::not_supported_yet",
                "the \"linear\" strategy is not supported yet",
                12
            ),
            (
                "berth::not_supported_yet",
                "the \"blue_green\" strategy is not supported yet",
                15
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
