//! `berth validate`: every problem of the stack file at once.

use crate::context::Context;
use crate::error::CliResult;
use crate::output::{Paint, Table};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(cx: &Context, _args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    // `-e` must name an environment of the file (the default, `local`, always exists).
    cx.environment(&stack)?;
    let summary = serde_json::json!({
        "valid": true,
        "file": cx.file.display().to_string(),
        "stack": stack.name,
        "environments": stack.environments.iter().map(|e| &e.name).collect::<Vec<_>>(),
        "services": stack.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "parameters": stack.parameters.len(),
    });
    if cx.output.is_json() {
        cx.output.json(&summary)?;
    } else {
        let style = cx.output.style();
        cx.output.line(format!(
            "{} {} is valid: stack {}, {} service{} ({}), {} parameter{}",
            style.paint(Paint::Green, "✓"),
            cx.file.display(),
            style.paint(Paint::Bold, &stack.name),
            stack.services.len(),
            if stack.services.len() == 1 { "" } else { "s" },
            stack
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            stack.parameters.len(),
            if stack.parameters.len() == 1 { "" } else { "s" },
        ));
        let mut table = Table::new([
            "SERVICE",
            "PORT",
            "CPU",
            "MEMORY",
            "DESIRED",
            "ROUTES",
            "HEALTH CHECK",
        ]);
        for service in &stack.services {
            let mut routes: Vec<String> = service
                .routes
                .iter()
                .map(|r| format!("{} ({})", r.path, r.priority))
                .collect();
            if service.default_route {
                routes.push("default".into());
            }
            table.row([
                service.name.clone(),
                service.port.to_string(),
                service.cpu.to_string(),
                service.memory.to_string(),
                service.desired_count.to_string(),
                routes.join(", "),
                service.health_check.path.clone(),
            ]);
        }
        cx.output.line("");
        cx.output.table(&table);
    }
    Ok(())
}
