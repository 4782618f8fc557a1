//! The executor's steps: create, update or delete one resource, making no choices.
//!
//! Every step is safe to repeat after an interruption: creations are tagged (EC2) or named
//! uniquely, so the next discovery finds a half-made resource and the planner finishes it
//! with an update (an internet gateway not yet attached shows `vpc: "" -> "vpc"`).

pub(crate) mod compute;
mod data;
mod identity;
mod network;
mod scaling;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_spec::{Outputs, Stack};

use crate::clients::Clients;
use crate::desired::Known;
use crate::error::{Error, Result};
use crate::progress::{Event, Progress};
use crate::resource::{Actual, Id, Resource, Spec};

/// The name of the inline policy berth puts on a role.
pub const INLINE_POLICY: &str = "berth";

/// How long and how often to poll while waiting for AWS (NAT gateways, RDS, the ALB,
/// services becoming stable).
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    pub interval: Duration,
    pub timeout: Duration,
    /// Whether `up` waits for services to become stable.
    pub services: bool,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(40 * 60),
            services: true,
        }
    }
}

/// What the steps share while a plan runs.
pub(crate) struct Ctx<'a> {
    pub c: &'a Clients,
    pub stack: &'a Stack,
    pub known: &'a Known,
    pub physical: Mutex<BTreeMap<Id, String>>,
    pub outputs: Mutex<Outputs>,
    pub progress: &'a Progress,
    pub waits: Waits,
    pub skip_final_snapshot: bool,
    /// What `down` kept (final snapshots).
    pub kept: Mutex<Vec<String>>,
}

impl Ctx<'_> {
    /// The physical id of a resource that exists (found or created earlier in this run).
    pub fn phys(&self, id: &str) -> Result<String> {
        self.physical
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::Other(format!("{id} does not exist yet")))
    }

    pub fn phys_all(&self, ids: &[Id]) -> Result<Vec<String>> {
        ids.iter().map(|id| self.phys(id)).collect()
    }

    fn set_phys(&self, id: &str, physical: String) {
        self.physical
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), physical);
    }

    pub fn outputs(&self) -> Outputs {
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn update_outputs(&self, f: impl FnOnce(&mut Outputs)) {
        f(&mut self.outputs.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Polls `check` until it returns `Some`, reporting the elapsed time.
    pub async fn wait<T, F, Fut>(&self, id: &str, what: &str, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let start = Instant::now();
        loop {
            if let Some(value) = check().await? {
                return Ok(value);
            }
            let elapsed = start.elapsed();
            if elapsed >= self.waits.timeout {
                return Err(Error::Timeout {
                    what: format!("{id} to be {what}"),
                    waited: elapsed,
                });
            }
            (self.progress)(Event::Waiting {
                id: id.to_owned(),
                what: what.to_owned(),
                elapsed,
            });
            tokio::time::sleep(self.waits.interval).await;
        }
    }

    /// The tags every resource carries.
    pub fn tags(&self, id: &str, name: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Name", name.to_owned()),
            (crate::discover::STACK_TAG, self.stack.name.clone()),
            (crate::discover::RESOURCE_TAG, id.to_owned()),
        ]
    }
}

/// Creates `r`; records its physical id.
pub(crate) async fn create(cx: &Ctx<'_>, r: &Resource) -> Result<()> {
    let physical = match &r.spec {
        Spec::Vpc { .. }
        | Spec::InternetGateway
        | Spec::Subnet { .. }
        | Spec::NatGateway { .. }
        | Spec::RouteTable { .. }
        | Spec::SecurityGroup { .. } => Box::pin(network::create(cx, r)).await?,
        Spec::OidcProvider
        | Spec::Role { .. }
        | Spec::Repository { .. }
        | Spec::LogGroup { .. }
        | Spec::Parameter { .. } => Box::pin(identity::create(cx, r)).await?,
        Spec::DbSubnetGroup { .. } | Spec::Database { .. } => Box::pin(data::create(cx, r)).await?,
        Spec::Cluster
        | Spec::LoadBalancer { .. }
        | Spec::TargetGroup { .. }
        | Spec::Listener { .. }
        | Spec::TaskDefinition { .. }
        | Spec::Service { .. } => Box::pin(compute::create(cx, r)).await?,
        Spec::Autoscaling { .. } => Box::pin(scaling::put(cx, r)).await?,
    };
    cx.set_phys(&r.id, physical);
    Ok(())
}

/// Brings an existing resource to `r`'s attributes.
pub(crate) async fn update(cx: &Ctx<'_>, r: &Resource, a: &Actual) -> Result<()> {
    let physical = match &r.spec {
        Spec::Vpc { .. }
        | Spec::InternetGateway
        | Spec::Subnet { .. }
        | Spec::NatGateway { .. }
        | Spec::RouteTable { .. }
        | Spec::SecurityGroup { .. } => Box::pin(network::update(cx, r, a)).await?,
        Spec::OidcProvider
        | Spec::Role { .. }
        | Spec::Repository { .. }
        | Spec::LogGroup { .. }
        | Spec::Parameter { .. } => Box::pin(identity::update(cx, r, a)).await?,
        Spec::DbSubnetGroup { .. } | Spec::Database { .. } => {
            Box::pin(data::update(cx, r, a)).await?
        }
        Spec::Cluster
        | Spec::LoadBalancer { .. }
        | Spec::TargetGroup { .. }
        | Spec::Listener { .. }
        | Spec::TaskDefinition { .. }
        | Spec::Service { .. } => Box::pin(compute::update(cx, r, a)).await?,
        // Registering a target and putting a policy are both upserts.
        Spec::Autoscaling { .. } => Box::pin(scaling::put(cx, r)).await?,
    };
    cx.set_phys(&r.id, physical);
    Ok(())
}

/// Deletes a resource found in the account.
pub(crate) async fn delete(cx: &Ctx<'_>, a: &Actual) -> Result<()> {
    use crate::resource::Kind as K;
    match a.kind {
        K::Vpc
        | K::InternetGateway
        | K::Subnet
        | K::NatGateway
        | K::RouteTable
        | K::SecurityGroup => Box::pin(network::delete(cx, a)).await,
        K::OidcProvider | K::Role | K::Repository | K::LogGroup | K::Parameter => {
            Box::pin(identity::delete(cx, a)).await
        }
        K::DbSubnetGroup | K::Database => Box::pin(data::delete(cx, a)).await,
        K::Cluster
        | K::LoadBalancer
        | K::TargetGroup
        | K::Listener
        | K::TaskDefinition
        | K::Service => Box::pin(compute::delete(cx, a)).await,
        K::Autoscaling => Box::pin(scaling::delete(cx, a)).await,
    }
}

/// After `down`: releases the stack's Elastic IPs that no NAT gateway deletion released (an
/// interrupted `up` or `down` leaves them).
pub(crate) async fn sweep(cx: &Ctx<'_>) -> Result<()> {
    network::release_addresses(cx, None).await
}
