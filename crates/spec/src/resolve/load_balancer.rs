//! `[load_balancer]`: the ALB's name, listeners and the default route.
use std::time::Duration;

use crate::model::{Https, LoadBalancer};
use crate::reader::{Problems, Sp, Table};
use crate::rules;

/// The load balancer and the `default_service` it names, if any.
pub(crate) fn load_balancer(
    top: &mut Table<'_, '_>,
    problems: &mut Problems,
    stack: &str,
) -> (LoadBalancer, Option<Sp<String>>) {
    let mut lb = LoadBalancer {
        name: format!("{stack}-alb"),
        http_port: 80,
        https: None,
        idle_timeout: Duration::from_secs(60),
    };
    let Some(mut t) = top.table(problems, "load_balancer") else {
        return (lb, None);
    };
    let default_service = t.text(problems, "default_service");
    if let Some(name) = t.text(problems, "name") {
        let why = rules::dns_label_problem(&name.value, 32).or_else(|| {
            name.value
                .starts_with("internal-")
                .then(|| "cannot start with `internal-`".into())
        });
        if let Some(why) = why {
            problems.at(
                "berth::bad_name",
                name.span.clone(),
                format!("invalid load balancer name: {why}"),
                "invalid name",
            );
        }
        lb.name = name.value;
    }
    if let Some(port) = t.u16(problems, "http_port", 1, 65535) {
        lb.http_port = port.value;
    }
    if let Some(timeout) = t.duration(
        problems,
        "idle_timeout",
        Duration::from_secs(1),
        Duration::from_secs(4000),
    ) {
        lb.idle_timeout = timeout.value;
    }
    if let Some(mut h) = t.table(problems, "https") {
        let port = h.u16(problems, "port", 1, 65535).map_or(443, |p| p.value);
        let certificate_arn = match h.text(problems, "certificate_arn") {
            Some(arn) => {
                if let Some(why) = rules::certificate_arn_problem(&arn.value) {
                    problems.at(
                        "berth::bad_value",
                        arn.span.clone(),
                        why,
                        "not a certificate ARN",
                    );
                }
                arn.value
            }
            None => {
                if !h.mentions("certificate_arn") {
                    problems.at(
                        "berth::missing_key",
                        h.span.clone(),
                        "an HTTPS listener needs `certificate_arn`",
                        "no certificate",
                    );
                }
                String::new()
            }
        };
        let redirect_http = h.bool(problems, "redirect_http").unwrap_or(true);
        if port == lb.http_port {
            problems.at(
                "berth::bad_value",
                h.span.clone(),
                "the HTTPS and HTTP listeners need different ports",
                "same port",
            );
        }
        h.finish(problems);
        lb.https = Some(Https {
            port,
            certificate_arn,
            redirect_http,
        });
    }
    t.finish(problems);
    (lb, default_service)
}
