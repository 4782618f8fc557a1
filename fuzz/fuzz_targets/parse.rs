//! Arbitrary bytes as a stack file: parsing, validation, rendering the diagnostics and
//! serializing a resolved stack must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miette::{GraphicalReportHandler, GraphicalTheme};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match berth_spec::parse(&text, "fuzz.toml", std::path::Path::new("/fuzz")) {
        Ok(stack) => {
            let _ = toml::to_string_pretty(&stack);
            let _ = serde_json::to_string(&stack);
            for service in &stack.services {
                for env in &stack.environments {
                    let _ = stack.effective_health_check(service, env);
                }
                let _ = stack.parameters_for(service).count();
            }
            let _ = stack.listener_rules();
        }
        Err(diagnostics) => {
            for problem in diagnostics.problems() {
                for label in &problem.labels {
                    assert!(label.span.end <= text.len() && text.is_char_boundary(label.span.start));
                }
            }
            let mut out = String::new();
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
            handler.render_report(&mut out, &diagnostics).expect("diagnostics render");
        }
    }
});
