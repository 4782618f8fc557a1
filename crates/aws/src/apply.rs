//! The executor: runs a [`Plan`]'s steps in dependency order, independent steps at the
//! same time, and stops launching new ones at the first failure (the next run converges).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::discover::Snapshot;
use crate::error::{Error, Result};
use crate::ops::{self, Ctx};
use crate::plan::{Action, Plan, Step};
use crate::progress::Event;
use crate::resource::{Id, Resource};

type StepFuture<'a> = Pin<Box<dyn Future<Output = (Id, Result<()>)> + Send + 'a>>;

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update(_) => "update",
        Action::Delete => "delete",
    }
}

async fn run_step(
    cx: &Ctx<'_>,
    step: &Step,
    desired: &BTreeMap<&str, &Resource>,
    snapshot: &Snapshot,
) -> Result<()> {
    let action = action_name(&step.action);
    (cx.progress)(Event::Started {
        id: step.id.clone(),
        kind: step.kind,
        name: step.name.clone(),
        action,
    });
    let start = Instant::now();
    let resource = || {
        desired
            .get(step.id.as_str())
            .copied()
            .ok_or_else(|| Error::Other(format!("{} is not a desired resource", step.id)))
    };
    let actual = || {
        snapshot
            .get(&step.id)
            .ok_or_else(|| Error::Other(format!("{} was not found", step.id)))
    };
    let result = match &step.action {
        Action::Create => ops::create(cx, resource()?).await,
        Action::Update(_) => ops::update(cx, resource()?, actual()?).await,
        Action::Delete => ops::delete(cx, actual()?).await,
    };
    match &result {
        Ok(()) => (cx.progress)(Event::Finished {
            id: step.id.clone(),
            action,
            elapsed: start.elapsed(),
        }),
        Err(_) => (cx.progress)(Event::Failed {
            id: step.id.clone(),
            action,
        }),
    }
    result.map_err(|source| Error::Step {
        action,
        id: step.id.clone(),
        source: Box::new(source),
    })
}

/// Runs `plan`; `parallel: false` runs one step at a time (for the benchmark).
pub(crate) async fn run(
    cx: &Ctx<'_>,
    plan: &Plan,
    resources: &[Resource],
    snapshot: &Snapshot,
    parallel: bool,
) -> Result<()> {
    let desired: BTreeMap<&str, &Resource> = resources.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut pending: Vec<&Step> = plan.steps.iter().collect();
    let mut done: BTreeSet<Id> = BTreeSet::new();
    let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
    let mut first_error: Option<Error> = None;
    let limit = if parallel { usize::MAX } else { 1 };
    loop {
        if first_error.is_none() {
            let mut i = 0;
            while i < pending.len() && running.len() < limit {
                if pending[i].after.iter().all(|a| done.contains(a)) {
                    let step = pending.remove(i);
                    let desired = &desired;
                    running.push(Box::pin(async move {
                        (step.id.clone(), run_step(cx, step, desired, snapshot).await)
                    }));
                } else {
                    i += 1;
                }
            }
        }
        match running.next().await {
            None => break,
            Some((id, Ok(()))) => {
                done.insert(id);
            }
            Some((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    match pending.first() {
        Some(step) => Err(Error::Other(format!(
            "{} waits for a step that never ran ({})",
            step.id,
            step.after.join(", ")
        ))),
        None => Ok(()),
    }
}
