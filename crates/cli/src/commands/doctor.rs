//! `berth doctor -e <aws env>`: the troubleshooting checks of the AWS engine
//! (`berth_aws::doctor`), rendered as a table of check, status and what to change, or as
//! one JSON document; exit 1 when a check fails.

use std::time::Duration;

use anyhow::anyhow;
use berth_aws::doctor::{Finding, Options, Status};

use crate::commands::aws::{connect, failed};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{Style, Table};

/// Check an AWS environment for what keeps tasks from starting or serving: NAT routes, the
/// execution role's permissions (ECR, logs, each secret's parameter and its KMS key), the
/// images in ECR, the security group chain, health check paths and stuck deployments.
///
/// Each check says what is wrong and what to change. Exit 1 when any check fails (warnings
/// alone exit 0). Read-only: describe calls only.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A deployment in progress for longer than this is reported stuck (5m, 30m, 1h).
    #[arg(long, default_value = "30m", value_parser = berth_spec::duration::parse)]
    pub(crate) stuck_after: Duration,
}

pub async fn run(cx: &Context, args: Args) -> CliResult {
    let stack = cx.load_stack()?;
    let environment = cx.environment(&stack)?;
    if environment.as_aws().is_none() {
        let aws: Vec<&str> = stack
            .environments
            .iter()
            .filter(|e| e.as_aws().is_some())
            .map(|e| e.name.as_str())
            .collect();
        return Err(CliError::Usage(anyhow!(
            "`berth doctor` checks an AWS environment: pass -e with one of the stack's ({}); locally, `berth status` shows tasks, targets and events",
            if aws.is_empty() {
                "none yet".to_owned()
            } else {
                aws.join(", ")
            }
        )));
    }
    let engine = connect(environment).await?;
    let options = Options {
        stuck_after: args.stuck_after,
        ..Options::default()
    };
    let findings = engine.doctor(&stack, &options).await.map_err(failed)?;
    let failures = findings.iter().filter(|f| f.status == Status::Fail).count();
    if cx.output.is_json() {
        cx.output.json(&serde_json::json!({
            "stack": stack.name,
            "environment": environment.name,
            "ok": failures == 0,
            "checks": findings,
        }))?;
    } else {
        cx.output
            .text(render(&findings, cx.output.width(), cx.output.style()));
        let warnings = findings.iter().filter(|f| f.status == Status::Warn).count();
        cx.output.note(format!(
            "{} checks: {failures} failed, {warnings} warned",
            findings.len()
        ));
    }
    if failures > 0 {
        return Err(CliError::Reported);
    }
    Ok(())
}

/// CHECK, STATUS and WHAT TO CHANGE (what is wrong, then the change), the last column
/// wrapped to the terminal.
fn render(findings: &[Finding], width: usize, style: Style) -> String {
    let mut table = Table::new(["CHECK", "STATUS", "WHAT TO CHANGE"]);
    table.wrap_last();
    for f in findings {
        // Plain words: escape codes would count toward the column widths.
        let status = match f.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let change = match (f.problem.is_empty(), f.fix.is_empty()) {
            (true, true) => String::new(),
            (false, true) => f.problem.clone(),
            (true, false) => f.fix.clone(),
            (false, false) => format!("{} → {}", f.problem, f.fix),
        };
        table.row([f.check.clone(), status.to_owned(), change]);
    }
    table.render(width, style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fits_the_terminal_and_keeps_the_whole_advice() {
        let findings = [
            Finding {
                check: "pull: route of private subnet 1".into(),
                status: Status::Ok,
                problem: String::new(),
                fix: String::new(),
            },
            Finding {
                check: "targets: RDS-SG allows 5432 from ECS-SG".into(),
                status: Status::Fail,
                problem: "RDS-SG (sg-1) has no inbound rule for TCP 5432 from ECS-SG".into(),
                fix: "allow TCP 5432 from ECS-SG (sg-2) in RDS-SG".into(),
            },
        ];
        let text = render(&findings, 70, Style { enabled: false });
        assert!(text.lines().all(|l| l.chars().count() <= 70), "{text}");
        assert!(text.starts_with("CHECK"), "{text}");
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("has no inbound rule for TCP 5432 from ECS-SG → allow TCP 5432 from ECS-SG (sg-2) in RDS-SG"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("pull: route of private subnet 1") && l.contains(" ok")),
            "{text}"
        );
    }
}
