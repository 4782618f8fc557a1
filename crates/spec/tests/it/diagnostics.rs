//! The corpus of broken stack files: each file's rendered diagnostics are pinned by a
//! snapshot (`cargo insta review` after a deliberate change).

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};

/// Renders diagnostics as a terminal without colour, 100 columns wide, would show them.
pub fn render(diagnostics: &berth_spec::Diagnostics) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, diagnostics)
        .expect("diagnostics render");
    out
}

#[test]
fn corpus() {
    insta::glob!("corpus/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let diagnostics = match berth_spec::parse(&text, name, Path::new("/stack")) {
            Ok(_) => panic!("{name} must be invalid"),
            Err(diagnostics) => diagnostics,
        };
        let summary: Vec<String> = diagnostics
            .problems()
            .iter()
            .map(|p| format!("{}:{}:{} {}", name, p.line, p.column, p.code))
            .collect();
        insta::assert_snapshot!(format!(
            "{}\n\n{}",
            summary.join("\n"),
            render(&diagnostics)
        ));
    });
}

#[test]
fn problems_come_in_file_order_with_positions() {
    let text = "[stack]\nname = \"demo\"\nbogus = 1\n\n[services.web]\nport = 0\n";
    let diagnostics = berth_spec::parse(text, "f.toml", Path::new("/")).unwrap_err();
    let found: Vec<(usize, usize, &str)> = diagnostics
        .problems()
        .iter()
        .map(|p| (p.line, p.column, p.code))
        .collect();
    assert_eq!(
        found,
        [(3, 1, "berth::unknown_key"), (6, 8, "berth::out_of_range")]
    );
}

#[test]
fn minimal_stack_gets_every_default() {
    let stack = berth_spec::parse(
        "[stack]\nname = \"demo\"\n[services.web]\nport = 8080\n",
        "f",
        Path::new("/app"),
    )
    .unwrap();
    assert_eq!(stack.cluster, "demo-cluster");
    assert_eq!(stack.load_balancer.name, "demo-alb");
    let web = stack.service("web").unwrap();
    assert!(
        web.default_route,
        "a lone service receives the default route"
    );
    assert_eq!((web.cpu, web.memory, web.desired_count), (256, 512, 2));
    assert_eq!(web.repository, "web-repo");
    assert_eq!(web.target_group, "web-tg");
    assert_eq!(web.logs.group, "/ecs/web");
    assert_eq!(
        web.health_check.interval,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(web.health_check.healthy_threshold, 5);
    assert_eq!(
        web.deregistration_delay,
        std::time::Duration::from_secs(300)
    );
    assert!(stack.environment("local").is_some());
    assert!(stack.database.is_none() && stack.security_groups.rds.is_none());
}

/// Every truncation of the example (a file being typed, a cut-off download) parses without
/// a panic, and its diagnostics render. The fuzz target does this at scale; this runs in CI.
#[test]
fn truncated_examples_never_panic() {
    let text = std::fs::read_to_string(crate::example::example_path()).unwrap();
    let cuts: Vec<usize> = (0..=text.len())
        .filter(|i| text.is_char_boundary(*i))
        .step_by(13)
        .collect();
    let mut invalid = 0;
    for cut in cuts {
        if let Err(diagnostics) = berth_spec::parse(&text[..cut], "berth.toml", Path::new("/")) {
            assert!(!diagnostics.problems().is_empty());
            assert!(!render(&diagnostics).is_empty());
            invalid += 1;
        }
    }
    assert!(invalid > 100, "most truncations are invalid ({invalid})");
}
