//! The AWS engine: provisions a stack's whole architecture on ECS Fargate through the AWS
//! APIs (no CloudFormation, no state file).
//!
//! ```text
//!   Stack ──desired()──▶ resources ─┐
//!                                   ├─ plan() (pure) ─▶ Plan ─ apply ─▶ SDK calls, DAG order
//!   account ──discover()──▶ actual ─┘
//! ```
//!
//! - [`desired`]: every resource of the stack with its attributes and dependencies (pure).
//! - [`discover`](Engine::discover): finds the stack's resources by their `berth:stack` /
//!   `berth:resource` tags (EC2) or unique names (the others). Read-only.
//! - [`plan`]: the pure diff (create / update with the attributes old → new / delete), in
//!   dependency order; secrets never shown. Nothing changed → an empty plan → no mutating
//!   call.
//! - [`Engine::apply`]: the dumb executor, independent steps in parallel; each step is safe
//!   to repeat, so an interrupted run converges when run again.
//!
//! This is the only crate that knows AWS shapes. It never prints: progress goes out as
//! [`Event`]s.

mod apply;
pub mod ci;
mod clients;
mod deploy;
pub mod desired;
mod discover;
mod discover_ecs;
mod discover_elb;
mod discover_scaling;
pub mod doctor;
mod doctor_facts;
mod error;
mod logs;
mod operate;
mod ops;
mod params;
pub mod plan;
mod policy;
mod progress;
mod registry;
mod resource;
mod rollback;
pub mod scaling;
mod services;
pub mod status;
pub mod strategy;

use std::sync::Mutex;

use berth_spec::{AwsEnvironment, Stack};

pub use clients::{Clients, Recorder, is_mutating};
pub use deploy::Deployed;
pub use desired::{Desired, Known, desired};
pub use discover::{RESOURCE_TAG, STACK_TAG, Snapshot};
pub use error::{Error, Result};
pub use logs::{FOLLOW_LOOKBACK, LogFollower, LogLine};
pub use operate::Scaled;
pub use ops::Waits;
pub use params::{Param, ParamSummary, PutParam};
pub use plan::{Action, Change, Plan, Step, destroy, plan};
pub use progress::{Event, Progress, silent};
pub use registry::RegistryLogin;
pub use resource::{Actual, Attrs, Id, Kind, ListenerDefault, Resource, Spec, Value};
pub use rollback::RolledBack;
pub use services::{BoxFuture, DeploymentRecord, SdkServices, ServiceApi, ServiceRequest};

/// How a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub waits: Waits,
    /// Run independent steps at the same time (the default); `false` for the benchmark.
    pub parallel: bool,
    /// `down`: delete the RDS instance without a final snapshot.
    pub skip_final_snapshot: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            waits: Waits::default(),
            parallel: true,
            skip_final_snapshot: false,
        }
    }
}

/// What a run left behind for the person to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `http://<the ALB's DNS name>` (`https://` with an HTTPS listener), once it exists.
    pub url: Option<String>,
    /// What `down` kept (final snapshots).
    pub kept: Vec<String>,
    /// (service, repository) pairs not created for lack of an image.
    pub waiting_for_image: Vec<(String, String)>,
}

/// A connection to one account and Region.
pub struct Engine {
    clients: Clients,
    environment: String,
    region: String,
    account_id: String,
}

impl Engine {
    /// Connects with the standard credential chain and checks the account: an environment
    /// with `account_id` refuses any other.
    pub async fn connect(environment: &str, aws: &AwsEnvironment) -> Result<Engine> {
        let clients = Clients::from_env(&aws.region, aws.profile.as_deref()).await;
        Engine::with_clients(environment, aws, clients).await
    }

    /// Connects through clients made elsewhere (the tests point them at moto).
    pub async fn with_clients(
        environment: &str,
        aws: &AwsEnvironment,
        clients: Clients,
    ) -> Result<Engine> {
        let identity = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(error::call("sts:GetCallerIdentity"))?;
        let account_id = identity.account().unwrap_or("").to_owned();
        if let Some(expected) = &aws.account_id
            && *expected != account_id
        {
            return Err(Error::WrongAccount {
                environment: environment.to_owned(),
                expected: expected.clone(),
                actual: account_id,
            });
        }
        Ok(Engine {
            clients,
            environment: environment.to_owned(),
            region: aws.region.clone(),
            account_id,
        })
    }

    /// Every call made so far (for the tests and the benchmark).
    pub fn recorder(&self) -> &Recorder {
        &self.clients.recorder
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// What the account holds of `stack`.
    pub async fn discover(&self, stack: &Stack) -> Result<Snapshot> {
        let place = discover::Place {
            environment: &self.environment,
            region: &self.region,
            account_id: &self.account_id,
        };
        discover::discover(&self.clients, stack, &place).await
    }

    /// Discovers, then plans `up` (pure from here).
    pub async fn plan_up(&self, stack: &Stack) -> Result<(Snapshot, Desired, Plan)> {
        strategy::refuse_unsupported(stack)?;
        let snapshot = self.discover(stack).await?;
        let desired = desired(stack, &snapshot.known);
        let plan = plan(&desired, &snapshot.actual);
        Ok((snapshot, desired, plan))
    }

    /// Discovers, then plans `down`.
    pub async fn plan_down(&self, stack: &Stack) -> Result<(Snapshot, Desired, Plan)> {
        let snapshot = self.discover(stack).await?;
        let desired = desired(stack, &snapshot.known);
        let plan = destroy(&desired, &snapshot.actual);
        Ok((snapshot, desired, plan))
    }

    /// Carries out an `up` plan from [`Engine::plan_up`].
    pub async fn apply(
        &self,
        stack: &Stack,
        (snapshot, desired, plan): (&Snapshot, &Desired, &Plan),
        options: Options,
        progress: &Progress,
    ) -> Result<Outcome> {
        self.run(stack, (snapshot, desired, plan), options, progress, false)
            .await
    }

    /// Carries out a `down` plan from [`Engine::plan_down`], then releases the stack's
    /// Elastic IPs that no NAT gateway holds (left by an interrupted `up`).
    pub async fn destroy(
        &self,
        stack: &Stack,
        (snapshot, desired, plan): (&Snapshot, &Desired, &Plan),
        options: Options,
        progress: &Progress,
    ) -> Result<Outcome> {
        self.run(stack, (snapshot, desired, plan), options, progress, true)
            .await
    }

    /// `berth deploy SERVICE`, its first half: registers a revision of the service's task
    /// definition with `image` (a full reference, a tag of its repository, or by default the
    /// repository's newest image) and updates the service to it with the stack's deployment
    /// configuration, its strategy or `strategy` (`--strategy`, once: see
    /// [`strategy::chosen`]). [`Engine::watch_rollout`] is the second half.
    pub async fn deploy(
        &self,
        stack: &Stack,
        service: &str,
        image: Option<&str>,
        strategy: Option<&str>,
        progress: &Progress,
    ) -> Result<Deployed> {
        strategy::refuse_unsupported(stack)?;
        let service = deploy::find(stack, service)?;
        let chosen = strategy::chosen(service, strategy)?;
        let snapshot = self.discover(stack).await?;
        let cx = self.ctx(stack, &snapshot, Options::default(), progress);
        let image = deploy::image(&cx, &snapshot, service, image).await?;
        deploy::start(&cx, &snapshot, service, image, &chosen).await
    }

    /// `berth build SERVICE --push`: the service's repository URI and a login to its
    /// registry (ECR's authorization token, valid 12 hours).
    pub async fn registry_login(&self, stack: &Stack, service: &str) -> Result<RegistryLogin> {
        let service = deploy::find(stack, service)?;
        registry::login(&self.clients, &self.environment, service).await
    }

    /// Watches the rollout of `deployed` until it is COMPLETED (`options.waits`: the poll
    /// interval and the timeout); FAILED (the circuit breaker) and a blue/green, canary or
    /// linear deployment rolled back (with the stage it was in) are [`Error::Rollout`].
    pub async fn watch_rollout(
        &self,
        stack: &Stack,
        service: &str,
        deployed: &Deployed,
        options: Options,
        progress: &Progress,
    ) -> Result<()> {
        let service = deploy::find(stack, service)?;
        let snapshot = Snapshot::default();
        let cx = self.ctx(stack, &snapshot, options, progress);
        deploy::watch(&cx, service, deployed).await
    }

    /// `berth scale SERVICE N`: sets the service's desired count on ECS.
    pub async fn scale(&self, stack: &Stack, service: &str, count: u32) -> Result<Scaled> {
        let service = deploy::find(stack, service)?;
        operate::scale(&self.clients, stack, service, count).await
    }

    /// `berth param put`: PutParameter (SecureString with the default SSM key); returns the
    /// new version.
    pub async fn param_put(&self, name: &str, value: &str, options: &PutParam) -> Result<u64> {
        params::put(&self.clients, name, value, options).await
    }

    /// `berth param get`: `NAME` or `NAME:VERSION`; a SecureString's value only
    /// `with_decryption`.
    pub async fn param_get(&self, selector: &str, with_decryption: bool) -> Result<Param> {
        params::get(&self.clients, selector, with_decryption).await
    }

    /// `berth param history`: every kept version, oldest first.
    pub async fn param_history(&self, name: &str, with_decryption: bool) -> Result<Vec<Param>> {
        params::history(&self.clients, name, with_decryption).await
    }

    /// `berth param list`: metadata only.
    pub async fn param_list(
        &self,
        path: Option<&str>,
        recursive: bool,
    ) -> Result<Vec<ParamSummary>> {
        params::list(&self.clients, path, recursive).await
    }

    /// `berth param rm`.
    pub async fn param_delete(&self, name: &str) -> Result<()> {
        params::delete(&self.clients, name).await
    }

    /// `berth status`: services, deployments, tasks, target health and events, from
    /// describe calls.
    pub async fn status(&self, stack: &Stack) -> Result<status::StackStatus> {
        status::status(&self.clients, stack).await
    }

    /// `berth deployments SERVICE`: the service's deployments, newest first.
    pub async fn deployments(&self, stack: &Stack, service: &str) -> Result<Vec<DeploymentRecord>> {
        let service = deploy::find(stack, service)?;
        self.clients
            .services
            .history(&stack.cluster, &service.service_name)
            .await
    }

    /// `berth rollback SERVICE`: stops the deployment in progress with ROLLBACK, or on a
    /// settled service deploys the previous completed revision again.
    /// [`Engine::watch_rollback`] follows it.
    pub async fn rollback(
        &self,
        stack: &Stack,
        service: &str,
        progress: &Progress,
    ) -> Result<RolledBack> {
        strategy::refuse_unsupported(stack)?;
        let service = deploy::find(stack, service)?;
        let history = self
            .clients
            .services
            .history(&stack.cluster, &service.service_name)
            .await?;
        match rollback::choose(&service.service_name, &history)? {
            rollback::Choice::Stop(deployment) => {
                self.clients.services.roll_back(&deployment).await?;
                Ok(RolledBack::Stopped { deployment })
            }
            rollback::Choice::Redeploy(task_definition) => {
                let snapshot = self.discover(stack).await?;
                deploy::exists(&snapshot, service)?;
                let cx = self.ctx(stack, &snapshot, Options::default(), progress);
                let wanted = desired(stack, &snapshot.known);
                let strategy = &service.deployment.strategy;
                let earlier = history.iter().map(|d| d.arn.clone()).collect();
                deploy::update_to(&cx, &wanted, service, task_definition.clone(), strategy).await?;
                Ok(RolledBack::Redeployed(Deployed {
                    revision: deploy::revision(&task_definition),
                    task_definition,
                    image: String::new(),
                    strategy: strategy::kind(strategy),
                    earlier,
                }))
            }
        }
    }

    /// Watches what [`Engine::rollback`] started until it ends (`options.waits`).
    pub async fn watch_rollback(
        &self,
        stack: &Stack,
        service: &str,
        started: &RolledBack,
        options: Options,
        progress: &Progress,
    ) -> Result<()> {
        let service_spec = deploy::find(stack, service)?;
        let snapshot = Snapshot::default();
        let cx = self.ctx(stack, &snapshot, options, progress);
        match started {
            RolledBack::Stopped { deployment } => {
                rollback::watch_stop(&cx, service_spec, deployment).await
            }
            RolledBack::Redeployed(deployed) => deploy::watch(&cx, service_spec, deployed).await,
        }
    }

    /// `berth logs SERVICE`: the service's log group since `since` (milliseconds since the
    /// epoch), matching `filter`, every stream merged in time order.
    pub async fn logs(
        &self,
        stack: &Stack,
        service: &str,
        since: Option<i64>,
        filter: Option<&str>,
    ) -> Result<Vec<LogLine>> {
        let service = deploy::find(stack, service)?;
        logs::events(&self.clients, service, since, filter).await
    }

    /// `berth logs SERVICE -F`: a follower of the service's log group from `since`; the
    /// caller polls it (or turns it into a stream with [`LogFollower::into_stream`]).
    pub fn follow_logs(
        &self,
        stack: &Stack,
        service: &str,
        since: Option<i64>,
        filter: Option<&str>,
    ) -> Result<LogFollower> {
        let service = deploy::find(stack, service)?;
        Ok(LogFollower::new(&self.clients, service, since, filter))
    }

    /// `berth doctor`: the account's state read by describe calls, then the tutorial's
    /// troubleshooting checks over it ([`doctor::diagnose`], pure).
    pub async fn doctor(
        &self,
        stack: &Stack,
        options: &doctor::Options,
    ) -> Result<Vec<doctor::Finding>> {
        let snapshot = self.discover(stack).await?;
        let facts = doctor_facts::gather(&self.clients, stack, snapshot).await?;
        Ok(doctor::diagnose(stack, &facts, options))
    }

    fn ctx<'a>(
        &'a self,
        stack: &'a Stack,
        snapshot: &'a Snapshot,
        options: Options,
        progress: &'a Progress,
    ) -> ops::Ctx<'a> {
        ops::Ctx {
            c: &self.clients,
            stack,
            known: &snapshot.known,
            physical: Mutex::new(
                snapshot
                    .actual
                    .iter()
                    .map(|a| (a.id.clone(), a.physical.clone()))
                    .collect(),
            ),
            outputs: Mutex::new(snapshot.known.outputs.clone()),
            progress,
            waits: options.waits,
            skip_final_snapshot: options.skip_final_snapshot,
            kept: Mutex::new(Vec::new()),
        }
    }

    async fn run(
        &self,
        stack: &Stack,
        (snapshot, desired, plan): (&Snapshot, &Desired, &Plan),
        options: Options,
        progress: &Progress,
        destroying: bool,
    ) -> Result<Outcome> {
        let cx = self.ctx(stack, snapshot, options, progress);
        apply::run(&cx, plan, &desired.resources, snapshot, options.parallel).await?;
        if destroying {
            ops::sweep(&cx).await?;
        }
        let kept = cx.kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // With HTTPS the site is reached over it (HTTP may only redirect).
        let url = match (
            &stack.load_balancer.https,
            cx.outputs().load_balancer_dns_name,
        ) {
            (Some(h), Some(dns)) if h.port == 443 => Some(format!("https://{dns}")),
            (Some(h), Some(dns)) => Some(format!("https://{dns}:{}", h.port)),
            _ => cx.outputs().load_balancer_url,
        }
        .filter(|_| !destroying);
        Ok(Outcome {
            url,
            kept,
            waiting_for_image: plan.waiting_for_image.clone(),
        })
    }
}
