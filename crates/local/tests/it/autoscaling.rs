//! Target-tracking autoscaling (ECS-SEMANTICS §6): the pure decision as tables, and the
//! real thing: a service scaled out under load and back in after it.

use std::time::Duration;

use berth_local::service::scaling::{Scaling, ScalingPolicy, ScalingView, decide};

const POLICY: ScalingPolicy = ScalingPolicy {
    min: 1,
    max: 6,
    target: 100.0,
    scale_out_cooldown: Duration::from_secs(60),
    scale_in_cooldown: Duration::from_secs(60),
};

fn view(running: u32, datapoints: &[Option<f64>]) -> ScalingView<'_> {
    ScalingView {
        running,
        desired: running,
        datapoints,
        deploying: false,
        last_scale_out: None,
        last_scale_in: None,
    }
}

fn out(to: u32, metric: f64) -> Scaling {
    Scaling::ScaleOut { to, metric }
}

fn scale_in(to: u32, metric: f64) -> Scaling {
    Scaling::ScaleIn { to, metric }
}

/// Each case names the statement it covers.
#[test]
fn scaling_tables() {
    let high = [Some(150.0); 3];
    let low = [Some(40.0); 15];
    let secs = Duration::from_secs;
    let mut mixed_low = [Some(40.0); 15];
    mixed_low[7] = Some(95.0);
    let mut gap = [Some(40.0); 15];
    gap[3] = None;
    let cases: Vec<(&str, ScalingView<'_>, Scaling)> = vec![
        (
            "S6.7: 3 datapoints above target scale out, ceil(2 × 150 / 100) (S6.6)",
            view(2, &high),
            out(3, 150.0),
        ),
        (
            "S6.7: 2 datapoints above target are not enough",
            view(2, &high[..2]),
            Scaling::Hold,
        ),
        (
            "S6.5: insufficient data never scales",
            view(2, &[Some(150.0), None, Some(150.0)]),
            Scaling::Hold,
        ),
        (
            "S6.5: scale-out rounds up: ceil(3 × 101 / 100) = 4",
            view(3, &[Some(101.0); 3]),
            out(4, 101.0),
        ),
        (
            "S6.8: clamped to max",
            view(4, &[Some(400.0); 3]),
            out(6, 400.0),
        ),
        ("S6.8: at max, hold", view(6, &high), Scaling::Hold),
        (
            "S6.8: below min a scale-out jumps to min first",
            ScalingView {
                desired: 0,
                ..view(0, &high)
            },
            out(1, 150.0),
        ),
        (
            "S6.4: within the scale-out cooldown the capacity added counts toward the next",
            ScalingView {
                running: 3,
                desired: 3,
                last_scale_out: Some((secs(10), 2)),
                ..view(3, &high)
            },
            Scaling::Hold,
        ),
        (
            "S6.4: within the cooldown a larger scale-out still happens",
            ScalingView {
                running: 3,
                desired: 3,
                last_scale_out: Some((secs(10), 2)),
                ..view(3, &[Some(250.0); 3])
            },
            out(5, 250.0),
        ),
        (
            "S6.4: after the scale-out cooldown, from the running count",
            ScalingView {
                last_scale_out: Some((secs(61), 2)),
                ..view(3, &high)
            },
            out(5, 150.0),
        ),
        (
            "S6.7: 15 datapoints below 90% of target scale in, to ceil(4 × 40 / 100) (S6.5)",
            view(4, &low),
            scale_in(2, 40.0),
        ),
        (
            "S6.7: 14 datapoints below are not enough",
            view(4, &low[..14]),
            Scaling::Hold,
        ),
        (
            "S6.5: one datapoint within 10% of target holds the scale-in",
            view(4, &mixed_low),
            Scaling::Hold,
        ),
        (
            "S6.5: a period without data holds the scale-in",
            view(4, &gap),
            Scaling::Hold,
        ),
        (
            "S6.5: not if removing a task would push the metric above target",
            view(2, &[Some(85.0); 15]),
            Scaling::Hold,
        ),
        (
            "S6.10: no scale-in during a deployment",
            ScalingView {
                deploying: true,
                ..view(4, &low)
            },
            Scaling::Hold,
        ),
        (
            "S6.10: scale-out continues during a deployment",
            ScalingView {
                deploying: true,
                ..view(2, &high)
            },
            out(3, 150.0),
        ),
        (
            "S6.4: the scale-in cooldown blocks further scale-in",
            ScalingView {
                last_scale_in: Some(secs(30)),
                ..view(4, &low)
            },
            Scaling::Hold,
        ),
        (
            "S6.4: after the scale-in cooldown, scale in again",
            ScalingView {
                last_scale_in: Some(secs(60)),
                ..view(4, &low)
            },
            scale_in(2, 40.0),
        ),
        (
            "S6.8: scale-in stops at min",
            view(3, &[Some(1.0); 15]),
            scale_in(1, 1.0),
        ),
        (
            "S6.8: below min, scale-in leaves the count alone",
            ScalingView {
                desired: 1,
                ..view(1, &low)
            },
            Scaling::Hold,
        ),
        (
            "S6.8: above max, scale-in comes down to max first",
            ScalingView {
                desired: 9,
                ..view(9, &[Some(85.0); 15])
            },
            scale_in(6, 85.0),
        ),
        (
            "S6.8: with min 1, real zeros scale in to min",
            view(2, &[Some(0.0); 15]),
            scale_in(1, 0.0),
        ),
    ];
    let mut failures = Vec::new();
    for (name, view, expected) in &cases {
        let got = decide(&POLICY, view);
        if got != *expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let zero_min = ScalingPolicy { min: 0, ..POLICY };
    assert_eq!(
        decide(&zero_min, &view(2, &[Some(0.0); 15])),
        scale_in(0, 0.0),
        "S6.8: with min 0, real zeros scale in to 0"
    );
    assert_eq!(
        decide(&zero_min, &view(0, &[Some(1.0), Some(1.0), Some(900.0)])),
        out(1, 900.0),
        "S6.8: from 0 tasks, the smallest step out"
    );
}

mod real {
    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use berth_local::runtime::{UpOptions, up};
    use berth_local::service::{ServiceHandle, ServiceStatus};
    use berth_local::task::TaskStatus;
    use berth_testkit::{bin_path, free_port, http_get};
    use tokio_util::sync::CancellationToken;

    use crate::support::within;

    /// One web service from 1 task, scaled on requests per target between 1 and 3, with
    /// datapoints every 500 ms and 2 s cooldowns.
    fn stack_text(port: u16) -> String {
        format!(
            r#"
[stack]
name = "autoscaling-test"

[environments.local]
listen = "127.0.0.1:{port}"
health_check_interval = "1s"
health_check_timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2
deregistration_delay = "1s"
metric_period = "500ms"

[load_balancer]
default_service = "web"

[services.web]
port = 80
desired_count = 1
build = {{ context = ".", command = "true", artifact = "{}" }}
health_check = {{ path = "/health" }}
autoscaling = {{ min = 1, max = 3, target = {{ requests_per_target = 600 }}, scale_out_cooldown = "2s", scale_in_cooldown = "2s" }}
"#,
            bin_path("file-analyzer-web").display()
        )
    }

    /// Waits, on the service's change counter, until `condition` holds of its status.
    async fn until(
        service: &ServiceHandle,
        what: &str,
        condition: impl Fn(&ServiceStatus) -> bool,
    ) {
        let mut changes = service.changes();
        within(what, async {
            while !condition(&service.status()) {
                changes.changed().await.unwrap();
            }
        })
        .await;
    }

    fn running(status: &ServiceStatus) -> usize {
        status
            .tasks
            .iter()
            .filter(|t| t.task.last_status == TaskStatus::Running)
            .count()
    }

    fn has_event(status: &ServiceStatus, text: &str) -> bool {
        status.events.iter().any(|e| e.message.contains(text))
    }

    fn berth_status(stack_file: &Path) -> String {
        let out = Command::new(bin_path("berth"))
            .arg("--file")
            .arg(stack_file)
            .args(["status", "--events", "0"])
            .env("NO_COLOR", "1")
            .env("COLUMNS", "250")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// S6.7, S6.8, S6.11: requests per target far above the target scale the service out to
    /// max with a service event; once the load is gone, fifteen datapoints of zero scale it
    /// back in to min; `berth status` shows both activities.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scales_out_under_load_and_back_in_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let stack_file = dir.path().join("berth.toml");
        std::fs::write(&stack_file, stack_text(port)).unwrap();
        let stack = berth_spec::load(&stack_file).unwrap();
        let options = UpOptions {
            environment: "local".into(),
            control_socket: true,
            interrupt: CancellationToken::new(),
        };
        let (runtime, _) = up(&stack, &options, Arc::new(|_| {})).await.unwrap();
        within("every target healthy", runtime.wait_steady()).await;
        let web = runtime.services()[0].clone();
        assert_eq!(running(&web.status()), 1);

        let stop = Arc::new(AtomicBool::new(false));
        let load = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = http_get(port, "/health");
                }
            })
        };
        until(&web, "a scale-out to max and 3 running tasks", |s| {
            has_event(s, "Successfully set desired count to 3.") && running(s) == 3
        })
        .await;
        let scaled = runtime.status().services[0].autoscaling.clone().unwrap();
        assert_eq!(
            (scaled.activities[0].from, scaled.activities[0].to),
            (1, 3),
            "{scaled:?}"
        );
        assert!(
            scaled.activities[0].cause.contains("AlarmHigh"),
            "{scaled:?}"
        );
        stop.store(true, Ordering::SeqCst);
        load.join().unwrap();

        until(&web, "a scale-in to min and 1 running task", |s| {
            has_event(s, "Successfully set desired count to 1.")
                && s.desired_count == 1
                && running(s) == 1
        })
        .await;
        let scaled = runtime.status().services[0].autoscaling.clone().unwrap();
        let steps: Vec<(u32, u32)> = scaled.activities.iter().map(|a| (a.from, a.to)).collect();
        assert_eq!(steps, [(3, 1), (1, 3)], "{scaled:?}");
        assert!(
            scaled.activities[0].cause.contains("AlarmLow"),
            "{scaled:?}"
        );

        let status = tokio::task::spawn_blocking(move || berth_status(&stack_file))
            .await
            .unwrap();
        for expected in ["ALBRequestCountPerTarget", "3 → 1", "1 → 3"] {
            assert!(
                status.contains(expected),
                "missing {expected:?} in\n{status}"
            );
        }
        runtime.shutdown().await;
    }
}
