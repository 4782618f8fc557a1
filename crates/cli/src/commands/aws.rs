//! `plan`, `up`, `down` and `deploy` on an environment with `runtime = "aws"`: the AWS engine
//! (crate `berth-aws`, behind the cargo feature `aws`) does the work; this module asks for
//! confirmation and renders its plan and progress.

use berth_spec::{Environment, Stack};

use crate::context::Context;
use crate::error::{CliError, CliResult};

/// Options of `up` and `down` that matter on AWS.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub struct Confirm {
    /// `--yes`: no question asked.
    pub yes: bool,
}

#[cfg(not(feature = "aws"))]
pub(crate) fn not_built(environment: &Environment) -> CliError {
    CliError::Usage(anyhow::anyhow!(
        "environment `{}` runs on AWS, and this berth was built without AWS support: build it with `cargo build -p berth-cli --features aws`",
        environment.name
    ))
}

#[cfg(not(feature = "aws"))]
pub async fn up(_: &Context, _: &Stack, environment: &Environment, _: Confirm) -> CliResult {
    Err(not_built(environment))
}

#[cfg(not(feature = "aws"))]
pub async fn down(
    _: &Context,
    _: &Stack,
    environment: &Environment,
    _: Confirm,
    _: bool,
) -> CliResult {
    Err(not_built(environment))
}

#[cfg(not(feature = "aws"))]
pub async fn deploy(
    _: &Context,
    _: &Stack,
    environment: &Environment,
    _: crate::commands::deploy::Args,
) -> CliResult {
    Err(not_built(environment))
}

#[cfg(feature = "aws")]
pub use engine::{deploy, down, plan, up};

#[cfg(feature = "aws")]
mod engine {
    use std::io::{BufRead, IsTerminal, Write};
    use std::sync::Arc;

    use anyhow::anyhow;
    use berth_aws::{Engine, Event, Options, Plan, Progress};

    use super::*;
    use crate::output::{Output, Paint};

    /// Show what `berth up -e <aws env>` would create, change and delete.
    #[derive(Debug, clap::Args)]
    pub struct PlanArgs {}

    pub(crate) async fn connect(environment: &Environment) -> CliResult<Engine> {
        let aws = environment.as_aws().ok_or_else(|| {
            CliError::Usage(anyhow!(
                "environment `{}` runs locally: `berth plan` is for AWS environments",
                environment.name
            ))
        })?;
        Engine::connect(&environment.name, aws)
            .await
            .map_err(failed)
    }

    /// The engine's error as the one error the CLI prints: its chain, then what to do.
    pub(crate) fn failed(e: berth_aws::Error) -> CliError {
        let usage = matches!(
            e,
            berth_aws::Error::WrongAccount { .. }
                | berth_aws::Error::ParameterExists { .. }
                | berth_aws::Error::NothingToRollBack { .. }
                | berth_aws::Error::Unsupported(_)
        );
        let mut chain: Vec<String> = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        let mut error = match e.hint() {
            Some(hint) => anyhow!("what to do: {hint}"),
            None => anyhow!("{}", chain.pop().unwrap_or_default()),
        };
        for message in chain.into_iter().rev() {
            error = error.context(message);
        }
        if usage {
            CliError::Usage(error)
        } else {
            CliError::Failed(error)
        }
    }

    fn render(plan: &Plan, out: &Output) {
        let style = out.style();
        for line in plan.to_string().lines() {
            let paint = match line.chars().next() {
                Some('+') => Some(Paint::Green),
                Some('~') => Some(Paint::Yellow),
                Some('-') => Some(Paint::Red),
                _ => None,
            };
            match paint {
                Some(p) => out.line(style.paint(p, line)),
                None => out.line(line),
            }
        }
    }

    fn json_plan(plan: &Plan) -> serde_json::Value {
        let steps: Vec<_> = plan
            .steps
            .iter()
            .map(|s| {
                let (action, changes) = match &s.action {
                    berth_aws::Action::Create => ("create", Vec::new()),
                    berth_aws::Action::Update(changes) => (
                        "update",
                        changes
                            .iter()
                            .map(|c| {
                                serde_json::json!({
                                    "attribute": c.attr,
                                    "old": c.old.to_string(),
                                    "new": c.new.to_string(),
                                })
                            })
                            .collect(),
                    ),
                    berth_aws::Action::Delete => ("delete", Vec::new()),
                };
                serde_json::json!({
                    "id": s.id, "kind": s.kind.as_str(), "name": s.name,
                    "action": action, "changes": changes,
                })
            })
            .collect();
        serde_json::json!({ "steps": steps, "waiting_for_image": plan.waiting_for_image })
    }

    pub async fn plan(cx: &Context, _args: PlanArgs) -> CliResult {
        let stack = cx.load_stack()?;
        let environment = cx.environment(&stack)?;
        let engine = connect(environment).await?;
        let (_, _, plan) = engine.plan_up(&stack).await.map_err(failed)?;
        if cx.output.is_json() {
            cx.output.json(&json_plan(&plan))?;
        } else {
            render(&plan, &cx.output);
        }
        Ok(())
    }

    /// Asks on the terminal; refuses (exit 2) without one unless `--yes`.
    fn confirm(question: &str, confirm: Confirm) -> CliResult {
        if confirm.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(anyhow!(
                "not a terminal, so nothing was changed: pass --yes to apply without a question"
            )));
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| {
                CliError::Failed(anyhow::Error::new(e).context("cannot read the answer"))
            })?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            Ok(())
        } else {
            Err(CliError::Failed(anyhow!("cancelled: nothing was changed")))
        }
    }

    pub(crate) fn progress(out: &Output) -> Progress {
        let style = out.stderr_style();
        Arc::new(move |event| {
            let line = match event {
                Event::Started {
                    kind, name, action, ..
                } => format!("  {action:>6} {kind} {name} ..."),
                Event::Waiting { id, what, elapsed } => format!(
                    "         {id}: waiting to be {what} ({}s)",
                    elapsed.as_secs()
                ),
                Event::Finished {
                    id,
                    action,
                    elapsed,
                } => style.paint(
                    Paint::Green,
                    format!("  {action:>6} {id} done ({:.1}s)", elapsed.as_secs_f64()),
                ),
                Event::Failed { id, action } => {
                    style.paint(Paint::Red, format!("  {action:>6} {id} failed"))
                }
            };
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        })
    }

    pub async fn up(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        answer: Confirm,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let (snapshot, desired, plan) = engine.plan_up(stack).await.map_err(failed)?;
        render(&plan, &cx.output);
        if !plan.is_empty() {
            confirm(
                &format!(
                    "apply this plan to account {} ({})?",
                    engine.account_id(),
                    environment.name
                ),
                answer,
            )?;
        }
        let outcome = engine
            .apply(
                stack,
                (&snapshot, &desired, &plan),
                Options::default(),
                &progress(&cx.output),
            )
            .await
            .map_err(failed)?;
        for (service, repo) in &outcome.waiting_for_image {
            cx.output.note(format!(
                "service {service} is not created yet: repository {repo} holds no image. Push one (docker push <account>.dkr.ecr.<region>.amazonaws.com/{repo}:<tag>), then run `berth up -e {}` again",
                environment.name
            ));
        }
        if let Some(url) = outcome.url {
            cx.output.line(url);
        }
        Ok(())
    }

    /// `berth deploy SERVICE -e <aws env>`: the new revision, the service updated, the
    /// rollout watched (exit 1 if it fails or times out).
    pub async fn deploy(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        args: crate::commands::deploy::Args,
    ) -> CliResult {
        // An unknown service is the caller's mistake (exit 2), said before connecting.
        let service = crate::commands::running::find_service(cx, stack, &args.service)?
            .name
            .clone();
        let engine = connect(environment).await?;
        let progress = progress(&cx.output);
        let deployed = engine
            .deploy(
                stack,
                &service,
                args.image.as_deref(),
                args.strategy.as_deref(),
                &progress,
            )
            .await
            .map_err(failed)?;
        // `outcome` and `reason` feed the generated workflows' job summary.
        let mut summary = serde_json::json!({
            "service": service,
            "revision": deployed.revision,
            "task_definition": deployed.task_definition,
            "image": deployed.image,
            "watched": !args.no_watch,
            "outcome": if args.no_watch { "IN_PROGRESS" } else { "COMPLETED" },
        });
        if !cx.output.is_json() {
            cx.output.line(format!(
                "{}: revision {} ({}) deploying",
                service, deployed.revision, deployed.image
            ));
        }
        if !args.no_watch {
            let watched = engine
                .watch_rollout(stack, &service, &deployed, Options::default(), &progress)
                .await;
            if let Err(e) = &watched
                && cx.output.is_json()
            {
                summary["outcome"] = "FAILED".into();
                summary["reason"] = e.to_string().into();
                cx.output.json(&summary)?;
            }
            watched.map_err(failed)?;
            if !cx.output.is_json() {
                cx.output.line(format!(
                    "{}: revision {} rolled out",
                    service, deployed.revision
                ));
            }
        }
        if cx.output.is_json() {
            cx.output.json(&summary)?;
        }
        Ok(())
    }

    pub async fn down(
        cx: &Context,
        stack: &Stack,
        environment: &Environment,
        answer: Confirm,
        skip_final_snapshot: bool,
    ) -> CliResult {
        let engine = connect(environment).await?;
        let (snapshot, desired, plan) = engine.plan_down(stack).await.map_err(failed)?;
        render(&plan, &cx.output);
        if !plan.is_empty() {
            confirm(
                &format!(
                    "delete these resources of stack {} in account {}?",
                    stack.name,
                    engine.account_id()
                ),
                answer,
            )?;
        }
        let options = Options {
            skip_final_snapshot,
            ..Options::default()
        };
        let outcome = engine
            .destroy(
                stack,
                (&snapshot, &desired, &plan),
                options,
                &progress(&cx.output),
            )
            .await
            .map_err(failed)?;
        for kept in &outcome.kept {
            cx.output.note(format!("kept: {kept}"));
        }
        Ok(())
    }
}

#[cfg(feature = "aws")]
pub use engine::PlanArgs;
#[cfg(feature = "aws")]
pub(crate) use engine::{connect, failed, progress};
