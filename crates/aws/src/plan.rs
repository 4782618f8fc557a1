//! The pure diff of desired against actual resources, in the order it must be applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::desired::Desired;
use crate::resource::{Actual, Attrs, Id, Kind, Resource, Value};

/// One attribute that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub attr: &'static str,
    pub old: Value,
    pub new: Value,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Update(Vec<Change>),
    Delete,
}

/// One resource's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: Id,
    pub kind: Kind,
    pub name: String,
    pub action: Action,
    /// For a creation: the attributes it will have.
    pub attrs: Attrs,
    /// Steps of this plan that must finish first.
    pub after: Vec<Id>,
}

/// Steps in an order that respects dependencies (creations and updates first, then
/// deletions, dependents before what they depend on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// (service, repository) pairs not created until their repository holds an image.
    pub waiting_for_image: Vec<(String, String)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many steps create, update and delete.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Action) -> bool| self.steps.iter().filter(|s| f(&s.action)).count();
        (
            count(|a| matches!(a, Action::Create)),
            count(|a| matches!(a, Action::Update(_))),
            count(|a| matches!(a, Action::Delete)),
        )
    }
}

/// Desired resources in dependency order (stable: the desired order where it is free).
fn topological(resources: &[Resource]) -> Vec<&Resource> {
    let ids: BTreeSet<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(resources.len());
    while out.len() < resources.len() {
        let before = out.len();
        for r in resources {
            if done.contains(r.id.as_str()) {
                continue;
            }
            let ready = r
                .deps
                .iter()
                .all(|d| done.contains(d.as_str()) || !ids.contains(d.as_str()));
            if ready {
                done.insert(&r.id);
                out.push(r);
            }
        }
        // A cycle cannot come from `desired`; emit the rest rather than loop forever.
        if out.len() == before {
            out.extend(resources.iter().filter(|r| !done.contains(r.id.as_str())));
            break;
        }
    }
    out
}

fn changes(desired: &Attrs, actual: &Attrs) -> Vec<Change> {
    desired
        .iter()
        .filter_map(|(attr, new)| {
            let old = actual.get(attr)?;
            let differs = match (new, old) {
                (Value::Pending(_), _) | (Value::Secret, _) => false,
                (new, old) => new != old,
            };
            differs.then(|| Change {
                attr,
                old: old.clone(),
                new: new.clone(),
            })
        })
        .collect()
}

/// What `up` must do to turn `actual` into `desired`.
pub fn plan(desired: &Desired, actual: &[Actual]) -> Plan {
    let found: BTreeMap<&str, &Actual> = actual.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut steps: Vec<Step> = Vec::new();
    for r in topological(&desired.resources) {
        let action = match found.get(r.id.as_str()) {
            None => Action::Create,
            Some(a) => {
                let changes = changes(&r.attrs, &a.attrs);
                if changes.is_empty() {
                    continue;
                }
                Action::Update(changes)
            }
        };
        steps.push(Step {
            id: r.id.clone(),
            kind: r.kind,
            name: r.name.clone(),
            attrs: if action == Action::Create {
                r.attrs.clone()
            } else {
                Attrs::new()
            },
            action,
            after: Vec::new(),
        });
    }
    let planned: BTreeSet<Id> = steps.iter().map(|s| s.id.clone()).collect();
    let deps: BTreeMap<&str, &Vec<Id>> = desired
        .resources
        .iter()
        .map(|r| (r.id.as_str(), &r.deps))
        .collect();
    for step in &mut steps {
        step.after = deps[step.id.as_str()]
            .iter()
            .filter(|d| planned.contains(*d))
            .cloned()
            .collect();
    }
    let wanted: BTreeSet<&str> = desired.resources.iter().map(|r| r.id.as_str()).collect();
    let orphans: Vec<&Actual> = actual
        .iter()
        .filter(|a| !wanted.contains(a.id.as_str()))
        .collect();
    let creates: Vec<Id> = steps.iter().map(|s| s.id.clone()).collect();
    let mut deletes = deletions(&desired.resources, &orphans);
    // Deletions come after the new layout is in place (a service moved to a new subnet).
    for step in &mut deletes {
        step.after.extend(creates.iter().cloned());
    }
    steps.extend(deletes);
    Plan {
        steps,
        waiting_for_image: desired.waiting_for_image.clone(),
    }
}

/// What `down` does: delete every resource found, dependents first.
pub fn destroy(desired: &Desired, actual: &[Actual]) -> Plan {
    let refs: Vec<&Actual> = actual.iter().collect();
    Plan {
        steps: deletions(&desired.resources, &refs),
        waiting_for_image: Vec::new(),
    }
}

/// Deletion steps for `doomed`: each waits for the doomed resources that depend on it (by
/// the desired graph), or, for a resource the stack no longer describes, for every doomed
/// resource of a later kind.
fn deletions(graph: &[Resource], doomed: &[&Actual]) -> Vec<Step> {
    let known: BTreeMap<&str, &Resource> = graph.iter().map(|r| (r.id.as_str(), r)).collect();
    let doomed_ids: BTreeSet<&str> = doomed.iter().map(|a| a.id.as_str()).collect();
    let mut steps: Vec<Step> = doomed
        .iter()
        .map(|a| {
            let after: Vec<Id> = if known.contains_key(a.id.as_str()) {
                graph
                    .iter()
                    .filter(|r| r.deps.contains(&a.id) && doomed_ids.contains(r.id.as_str()))
                    .map(|r| r.id.clone())
                    .collect()
            } else {
                doomed
                    .iter()
                    .filter(|b| b.kind > a.kind)
                    .map(|b| b.id.clone())
                    .collect()
            };
            Step {
                id: a.id.clone(),
                kind: a.kind,
                name: a.name.clone(),
                action: Action::Delete,
                attrs: Attrs::new(),
                after,
            }
        })
        .collect();
    // Shown dependents first: reverse kind order, then by id.
    steps.sort_by(|a, b| b.kind.cmp(&a.kind).then_with(|| a.id.cmp(&b.id)));
    steps
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            let sign = match step.action {
                Action::Create => '+',
                Action::Update(_) => '~',
                Action::Delete => '-',
            };
            writeln!(f, "{sign} {} {:?} ({})", step.kind, step.name, step.id)?;
            match &step.action {
                Action::Create => {
                    for (attr, value) in &step.attrs {
                        writeln!(f, "      {attr} = {value}")?;
                    }
                }
                Action::Update(changes) => {
                    for c in changes {
                        writeln!(f, "      {}: {} -> {}", c.attr, c.old, c.new)?;
                    }
                }
                Action::Delete => {}
            }
        }
        for (service, repo) in &self.waiting_for_image {
            writeln!(
                f,
                "! service {service} waits for a first image in repository {repo}"
            )?;
        }
        let (c, u, d) = self.counts();
        write!(f, "{c} to create, {u} to change, {d} to delete")
    }
}
