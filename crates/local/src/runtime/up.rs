//! `berth up`: from a resolved [`Stack`] to a running [`Runtime`].
//!
//! Order (each step needs the previous one's outputs): clean up after a killed berth, start
//! the database, make sure every service has an image (building it when none), bind the load
//! balancer, write the parameters that reference stack outputs, then start the services.
//! A failure stops what was already started.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_spec::{Environment, LocalEnvironment, ParameterValue, Reference, Service, Stack};
use tokio_util::sync::CancellationToken;

use super::autoscale::ScalerSettings;
use super::containers;
use super::database::{DatabaseOutputs, RunningDatabase, start_database};
use super::launcher::{
    ContainerTemplate, SecretSource, StackLauncher, TaskTemplate, missing_parameters,
};
use super::release::StackReleases;
use super::revisions::RevisionNumbers;
use super::router::BalancerRouter;
use super::traffic::StackShifter;
use super::{RunStateFile, Runtime, RuntimeError, RuntimeEvent, RuntimeParts, ShutdownStep};
use crate::balancer::{
    Balancer, BalancerError, Forward, HealthCheckConfig, ListenerConfig, Rule, RuleRef,
    TargetGroupConfig,
};
use crate::cleanup::{CleanupError, Recovery, left_behind, leftovers_message, recover};
use crate::engine::{self, Artifact, Engine, EngineError};
use crate::params::{ParamError, ParamStore, ParameterType};
use crate::registry::{
    BuildCommand, BuildError, BuildRequest, LATEST, Registry, RegistryError, check_artifact_kind,
    git_revision, run_build,
};
use crate::service::{CircuitBreaker, DeploymentConfiguration, ServiceSettings, ServiceTraffic};
use crate::state_dir::{FsError, StateDir};
use crate::task::{ContainerHealthCheck, SecretValue, TaskId, TaskUser, TaskUserError};

/// Receives progress while the stack comes up.
pub type Progress = Arc<dyn Fn(RuntimeEvent) + Send + Sync>;

/// How to bring a stack up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The environment (`local`).
    pub environment: String,
    /// Listen on `.berth/run/control.sock` (what `berth status`/`down`/`scale` use).
    pub control_socket: bool,
    /// Cancelled when the user interrupts the start (Ctrl-C, SIGTERM): `up` then stops what
    /// it had started and returns [`UpError::Interrupted`].
    pub interrupt: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("no environment `{name}` in the stack")]
    UnknownEnvironment { name: String },
    #[error("environment `{name}` runs on AWS, not on this machine")]
    NotLocal { name: String },
    #[error("cannot prepare the state directory")]
    StateDir(#[source] FsError),
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    #[error("cannot open the parameter store")]
    Params(#[source] ParamError),
    #[error("cannot write parameter {name}")]
    Parameter {
        name: String,
        #[source]
        source: ParamError,
    },
    #[error(
        "parameter {name} has no value: set it with `berth param put {name} VALUE --type SecureString`"
    )]
    OperatorParameter { name: String },
    #[error("parameter {name} references `{reference}`, which has no value here")]
    UnresolvedReference { name: String, reference: String },
    #[error("cannot open the image registry")]
    Registry(#[source] RegistryError),
    #[error("service {service} has no image in {repository} and no build to make one")]
    NoImage { service: String, repository: String },
    #[error("cannot build service {service}")]
    Build {
        service: String,
        #[source]
        source: BuildError,
    },
    #[error("cannot snapshot the build of {service} into the registry")]
    Push {
        service: String,
        #[source]
        source: RegistryError,
    },
    #[error("cannot start the load balancer")]
    Balancer(#[source] BalancerError),
    #[error("cannot start the database")]
    Database(#[source] super::database::DatabaseStartError),
    #[error("cannot prepare the account tasks run as")]
    TaskUser(#[source] TaskUserError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("the container engine cannot be used")]
    Engine(#[source] EngineError),
    #[error("the container engine has no image {reference}")]
    NoContainerImage { reference: String },
    #[error("cannot build the image of service {service}")]
    ImageBuild {
        service: String,
        #[source]
        source: BuildError,
    },
    #[error("interrupted before the stack was up")]
    Interrupted,
}

pub(super) fn local_environment<'s>(
    stack: &'s Stack,
    name: &str,
) -> Result<&'s Environment, UpError> {
    let environment = stack
        .environment(name)
        .ok_or_else(|| UpError::UnknownEnvironment {
            name: name.to_owned(),
        })?;
    if environment.as_local().is_none() {
        return Err(UpError::NotLocal {
            name: name.to_owned(),
        });
    }
    Ok(environment)
}

/// The `.berth/` directory of a local environment.
pub fn state_dir(stack: &Stack, environment: &Environment) -> Result<StateDir, UpError> {
    let local = environment.as_local().ok_or_else(|| UpError::NotLocal {
        name: environment.name.clone(),
    })?;
    Ok(StateDir::at(stack.root.join(&local.state_dir)))
}

/// `.berth/run` of a local environment: the control socket, the recovery state, the log of a
/// detached berth.
pub fn run_dir(stack: &Stack, environment: &Environment) -> Result<PathBuf, UpError> {
    Ok(state_dir(stack, environment)?.run())
}

/// Brings the stack up and returns the running runtime, plus what was cleaned up after a
/// berth that had been killed.
pub async fn up(
    stack: &Stack,
    options: &UpOptions,
    progress: Progress,
) -> Result<(Runtime, Option<Recovery>), UpError> {
    let environment = local_environment(stack, &options.environment)?;
    let local = environment
        .as_local()
        .expect("local_environment checked it");
    let state = state_dir(stack, environment)?;
    state.ensure().map_err(UpError::StateDir)?;
    // Recovery waits for leftover tasks to exit, up to their stop timeout: not on a thread
    // that runs async tasks.
    let run = state.run();
    let left = left_behind(&run);
    if let Some(longest) = left.iter().map(|task| task.stop_timeout).max() {
        progress(RuntimeEvent::Progress {
            message: leftovers_message(left.len(), longest),
        });
    }
    let recovery = match tokio::task::spawn_blocking(move || recover(&run)).await {
        Ok(result) => result?,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    let recovery = recovery.stale_berth.is_some().then_some(recovery);
    let engine = containers::engine_for(stack, &state, &progress).await?;
    let params = Arc::new(ParamStore::open(&state).map_err(UpError::Params)?);
    let say = |message: String| {
        progress(RuntimeEvent::Progress { message });
    };

    // The database first: the parameters reference its endpoint.
    let database = start_database(stack, &state, &params, &progress)
        .await
        .map_err(UpError::Database)?;
    let mut cleanup = Cleanup {
        database: database.clone(),
        ..Cleanup::default()
    };

    let result = async {
        let images = ensure_images(stack, &state, engine.as_ref(), &progress).await?;

        let listener = listener_config(stack, environment);
        let balancer = Balancer::bind(local.listen, listener)
            .await
            .map_err(UpError::Balancer)?;
        cleanup.balancer = Some(balancer.clone());
        let url = balancer.url();
        say(format!("load balancer listening on {url}"));

        let outputs = Outputs {
            database: database.as_ref().map(RunningDatabase::outputs),
            url: url.clone(),
        };
        ensure_parameters(stack, &params, &outputs)?;

        // Revision numbers go on from the last berth's (`berth deploy` registers the next).
        let revisions = Arc::new(RevisionNumbers::open(&state));
        let mut first_revisions = HashMap::new();
        for service in &stack.services {
            let n = revisions
                .next(&service.task_family)
                .map_err(UpError::StateDir)?;
            first_revisions.insert(service.name.clone(), format!("{}:{n}", service.task_family));
        }
        let templates = stack
            .services
            .iter()
            .map(|service| {
                let image = &images[&service.name];
                (
                    first_revisions[&service.name].clone(),
                    task_template(service, image.clone(), local),
                )
            })
            .collect();
        let state_file = Arc::new(RunStateFile::new(state.run()));
        let launcher = Arc::new(StackLauncher {
            templates,
            secrets: Arc::new(StoreSecrets(params.clone())),
            logs: super::logs::log_streams(stack, &state, local),
            state_file: Some(Arc::clone(&state_file)),
            user: TaskUser::for_this_berth().map_err(UpError::TaskUser)?,
        });
        let releases = StackReleases {
            stack: stack.name.clone(),
            environment: environment.name.clone(),
            state: state.clone(),
            launcher: Arc::clone(&launcher),
            progress: progress.clone(),
            engine: engine.clone(),
            revisions,
        };
        let router = Arc::new(BalancerRouter::new(balancer.clone()));
        let services = stack
            .services
            .iter()
            .map(|service| {
                let traffic = service_traffic(stack, environment, service, &balancer, &router);
                service_settings(
                    service,
                    &images[&service.name],
                    first_revisions[&service.name].clone(),
                    Some(traffic),
                )
            })
            .collect();
        let autoscaling = stack
            .services
            .iter()
            .filter_map(|service| {
                let scaling = service.autoscaling.as_ref()?;
                Some(ScalerSettings::new(
                    &stack.cluster,
                    service,
                    scaling,
                    local.metric_period,
                ))
            })
            .collect();

        let mut shutdown_steps: Vec<(String, ShutdownStep)> = Vec::new();
        let lb = balancer.clone();
        shutdown_steps.push((
            "the load balancer".to_owned(),
            Box::new(move || Box::pin(async move { lb.shutdown().await })),
        ));
        if let Some(db) = database.clone() {
            shutdown_steps.push((
                "the database".to_owned(),
                Box::new(move || Box::pin(async move { db.stop().await })),
            ));
        }
        let runtime = Runtime::start(RuntimeParts {
            stack: stack.name.clone(),
            environment: environment.name.clone(),
            url,
            run_dir: state.run(),
            state_file,
            services,
            autoscaling,
            launcher,
            releases: Some(Arc::new(releases)),
            router: Some(router),
            local_differences: local_differences(stack, environment),
            postgres: database.as_ref().and_then(RunningDatabase::run_record),
            database: database.clone(),
            shutdown_steps,
            control_socket: options.control_socket,
        })?;
        say("starting tasks".to_owned());
        Ok(runtime)
    };
    // The start is dropped at the next await point once interrupted; what it had started by
    // then is in `cleanup`. The database is never dropped half-started: the check comes after.
    let result = tokio::select! {
        biased;
        () = options.interrupt.cancelled() => Err(UpError::Interrupted),
        result = result => result,
    };
    match result {
        Ok(runtime) => Ok((runtime, recovery)),
        Err(error) => {
            cleanup.run().await;
            Err(error)
        }
    }
}

/// What to stop when `up` fails half-way.
#[derive(Default)]
struct Cleanup {
    balancer: Option<Balancer>,
    database: Option<RunningDatabase>,
}

impl Cleanup {
    async fn run(self) {
        if let Some(balancer) = self.balancer {
            balancer.shutdown().await;
        }
        if let Some(database) = self.database {
            database.stop().await;
        }
    }
}

/// The image of every service: the registry's `latest`, or a fresh build when it has none.
async fn ensure_images(
    stack: &Stack,
    state: &StateDir,
    engine: Option<&Engine>,
    progress: &Progress,
) -> Result<HashMap<String, ImageRef>, UpError> {
    let registry = Registry::open(state).map_err(UpError::Registry)?;
    let mut images = HashMap::new();
    for service in &stack.services {
        if let (Some(Artifact::Image(image)), Some(engine)) =
            (engine::artifact(service, engine.is_some()), engine)
        {
            let image = containers::ensure_image(
                stack,
                service,
                image,
                containers::Pick::LatestOrBuild,
                state,
                engine,
                progress,
            )
            .await?;
            images.insert(service.name.clone(), image);
            continue;
        }
        let image = match registry.resolve(&service.repository, LATEST) {
            Ok(image) => image,
            Err(RegistryError::ImageNotFound { .. }) => {
                build_image(stack, service, state, &registry, progress).await?
            }
            Err(source) => return Err(UpError::Registry(source)),
        };
        progress(RuntimeEvent::Progress {
            message: format!(
                "{}: image {}@{}",
                service.name,
                service.repository,
                short_digest(&image.digest)
            ),
        });
        images.insert(
            service.name.clone(),
            ImageRef {
                path: image.path,
                digest: image.digest,
                container: None,
            },
        );
    }
    Ok(images)
}

fn short_digest(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

/// An image a service runs.
#[derive(Debug, Clone)]
pub(super) struct ImageRef {
    /// The snapshot's executable (process tasks).
    pub(super) path: PathBuf,
    /// The snapshot's digest, or the container image's id.
    pub(super) digest: String,
    /// How the tasks run as containers (container tasks).
    pub(super) container: Option<ContainerTemplate>,
}

pub(super) async fn build_image(
    stack: &Stack,
    service: &Service,
    state: &StateDir,
    registry: &Registry,
    progress: &Progress,
) -> Result<crate::registry::Image, UpError> {
    let Some(build) = &service.build else {
        return Err(UpError::NoImage {
            service: service.name.clone(),
            repository: service.repository.clone(),
        });
    };
    progress(RuntimeEvent::Progress {
        message: format!(
            "{}: no image yet, building with `{}` (the first build of a Rust app takes a few minutes)",
            service.name, build.command
        ),
    });
    let request = BuildRequest {
        command: BuildCommand::Shell(build.command.clone()),
        context: build.context.clone(),
        artifact: build.artifact.clone(),
        log_file: state.registry().join(format!("{}.build.log", service.name)),
    };
    let name = service.name.clone();
    let result = run_build(&request, |line| {
        progress(RuntimeEvent::Progress {
            message: format!("{name}: {}", line.line()),
        });
    })
    .await
    .and_then(|result| check_artifact_kind(build, &result.artifact).map(|()| result))
    .map_err(|source| UpError::Build {
        service: service.name.clone(),
        source,
    })?;
    let mut tags = Vec::new();
    if let Some(revision) = git_revision(&stack.root) {
        tags.push(revision.tag());
    }
    registry
        .push(&service.repository, &result.artifact, &tags)
        .map_err(|source| UpError::Push {
            service: service.name.clone(),
            source,
        })
}

/// The listener: the stack's path rules by priority, the default service, one target group
/// per service with its health check as it runs locally.
fn listener_config(stack: &Stack, environment: &Environment) -> ListenerConfig {
    let rules = stack
        .listener_rules()
        .into_iter()
        .map(|rule| Rule::forward(rule.priority, [rule.path], rule.target.target_group))
        .collect();
    let default_action = stack
        .default_service()
        .or_else(|| stack.services.first())
        .map(|s| Forward::to(s.target_group.clone()))
        .unwrap_or_else(|| Forward {
            target_groups: Vec::new(),
        });
    let target_groups = stack
        .services
        .iter()
        .map(|service| target_group_config(stack, environment, service))
        .collect();
    ListenerConfig {
        rules,
        default_action,
        target_groups,
        idle_timeout: stack.load_balancer.idle_timeout,
    }
}

/// A service's target group as the stack and the environment set it up.
fn target_group_config(
    stack: &Stack,
    environment: &Environment,
    service: &Service,
) -> TargetGroupConfig {
    let check = stack.effective_health_check(service, environment);
    let mut config = TargetGroupConfig::new(service.target_group.clone());
    config.health_check = HealthCheckConfig {
        path: check.path.clone(),
        interval: check.interval,
        timeout: check.timeout,
        healthy_threshold: check.healthy_threshold,
        unhealthy_threshold: check.unhealthy_threshold,
        matcher: check.matcher.parse().unwrap_or_default(),
    };
    config.deregistration_delay = stack.effective_deregistration_delay(service, environment);
    config.request_timeout = stack.load_balancer.idle_timeout;
    config
}

/// What shifts a service's traffic: every listener rule forwarding to it and its target
/// group's settings, for green's group.
fn service_traffic(
    stack: &Stack,
    environment: &Environment,
    service: &Service,
    balancer: &Balancer,
    router: &Arc<BalancerRouter>,
) -> ServiceTraffic {
    let mut rules: Vec<RuleRef> = stack
        .listener_rules()
        .into_iter()
        .filter(|rule| rule.target.target_group == service.target_group)
        .map(|rule| RuleRef::Priority(rule.priority))
        .collect();
    let default = stack.default_service().or_else(|| stack.services.first());
    if default.is_some_and(|d| d.name == service.name) {
        rules.push(RuleRef::Default);
    }
    ServiceTraffic {
        alternate_target_group: service.alternate_target_group(),
        shifter: Arc::new(StackShifter {
            balancer: balancer.clone(),
            router: Arc::clone(router),
            rules,
            target_group: target_group_config(stack, environment, service),
        }),
    }
}

/// The stack outputs String parameters may reference.
struct Outputs {
    database: Option<DatabaseOutputs>,
    url: String,
}

impl Outputs {
    fn lookup(&self, reference: &Reference, resolved: &HashMap<String, String>) -> Option<String> {
        match reference {
            Reference::DatabaseHost => self.database.as_ref().map(|d| d.host.clone()),
            Reference::DatabasePort => self.database.as_ref().map(|d| d.port.to_string()),
            Reference::DatabaseName => self.database.as_ref().map(|d| d.name.clone()),
            Reference::LoadBalancerUrl => Some(self.url.clone()),
            Reference::LoadBalancerDnsName => Some(
                self.url
                    .strip_prefix("http://")
                    .unwrap_or(&self.url)
                    .to_owned(),
            ),
            Reference::Parameter(name) => resolved.get(name).cloned(),
        }
    }
}

/// Writes every parameter berth owns (outputs, generated values, the database user) and
/// checks that the operator's are set. Values only change when they differ, so `up` after
/// `up` adds no versions.
fn ensure_parameters(stack: &Stack, params: &ParamStore, outputs: &Outputs) -> Result<(), UpError> {
    let put_error = |name: &str| {
        let name = name.to_owned();
        move |source| UpError::Parameter { name, source }
    };
    let mut resolved: HashMap<String, String> = HashMap::new();
    // Templates may reference each other: resolve in passes until nothing moves.
    let mut pending: Vec<_> = stack.parameters.iter().collect();
    loop {
        let before = pending.len();
        let mut still = Vec::new();
        for parameter in pending {
            match &parameter.value {
                ParameterValue::Template { template } => {
                    match template.render(|r| outputs.lookup(r, &resolved)) {
                        Ok(value) => {
                            params
                                .put_if_changed(
                                    &parameter.name,
                                    &value,
                                    ParameterType::String,
                                    parameter.description.as_deref(),
                                )
                                .map_err(put_error(&parameter.name))?;
                            resolved.insert(parameter.name.clone(), value);
                        }
                        Err(_) => still.push(parameter),
                    }
                }
                ParameterValue::Generated { .. } => {
                    params
                        .get_or_generate_password(
                            &parameter.name,
                            parameter
                                .description
                                .as_deref()
                                .unwrap_or("generated by berth"),
                        )
                        .map_err(put_error(&parameter.name))?;
                }
                ParameterValue::DatabaseUsername => {
                    if let Some(database) = &outputs.database {
                        params
                            .put_if_changed(
                                &parameter.name,
                                &database.username,
                                ParameterType::SecureString,
                                parameter.description.as_deref(),
                            )
                            .map_err(put_error(&parameter.name))?;
                    }
                }
                // Generated when the database started.
                ParameterValue::DatabasePassword => {}
                ParameterValue::Operator => {
                    let value = params
                        .value(&parameter.name)
                        .map_err(put_error(&parameter.name))?;
                    if value.is_none() {
                        return Err(UpError::OperatorParameter {
                            name: parameter.name.clone(),
                        });
                    }
                }
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if still.len() == before {
            let parameter = still[0];
            let reference = match &parameter.value {
                ParameterValue::Template { template } => template
                    .render(|r| outputs.lookup(r, &resolved))
                    .err()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            return Err(UpError::UnresolvedReference {
                name: parameter.name.clone(),
                reference,
            });
        }
        pending = still;
    }
}

/// Secrets from the parameter store, read at each task's start.
struct StoreSecrets(Arc<ParamStore>);

impl SecretSource for StoreSecrets {
    fn resolve(&self, secrets: &[(String, String)]) -> Result<Vec<(String, SecretValue)>, String> {
        let mut values = Vec::with_capacity(secrets.len());
        let mut missing = Vec::new();
        for (variable, parameter) in secrets {
            match self.0.value(parameter) {
                Ok(Some(value)) => {
                    values.push((variable.clone(), SecretValue::new(value.expose())))
                }
                Ok(None) => missing.push(parameter.as_str()),
                Err(error) => {
                    tracing::warn!(parameter = %parameter, %error, "cannot read a task secret");
                    missing.push(parameter.as_str());
                }
            }
        }
        if missing.is_empty() {
            Ok(values)
        } else {
            Err(missing_parameters(missing.into_iter()))
        }
    }
}

/// The task definition of a service, locally.
pub(super) fn task_template(
    service: &Service,
    image: ImageRef,
    local: &LocalEnvironment,
) -> TaskTemplate {
    // A directory artifact (`run`): the program runs in the snapshot directory; a container
    // runs its image's own command.
    let run = service.build.as_ref().and_then(|b| b.run.as_deref());
    let (executable, args, working_dir) = match run.and_then(<[String]>::split_first) {
        Some((program, args)) if image.container.is_none() => {
            (PathBuf::from(program), args.to_vec(), Some(image.path))
        }
        _ => (image.path, Vec::new(), None),
    };
    TaskTemplate {
        executable,
        args,
        working_dir,
        environment: service
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        secrets: service
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        stop_timeout: service.deployment.stop_timeout,
        health_check: service
            .container_health_check
            .as_ref()
            .map(|check| container_health_check(check, service.port, local)),
        container: image.container,
    }
}

/// The container health check as a shell command. The stack's command probes the container
/// port (AWS); locally each task has its own port, so `:<container port>` becomes `:$PORT`.
/// Like the target group's checks, it runs at most every local health-check interval, so a
/// local start takes seconds (the start period and retries stay the stack's).
fn container_health_check(
    check: &berth_spec::ContainerHealthCheck,
    container_port: u16,
    local: &LocalEnvironment,
) -> ContainerHealthCheck {
    let interval = check.interval.min(local.health_check_interval);
    let command = match check.command.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => rest.join(" "),
        Some((kind, rest)) if kind == "CMD" => rest
            .iter()
            .map(|arg| shell_quote(arg))
            .collect::<Vec<_>>()
            .join(" "),
        _ => check.command.join(" "),
    };
    ContainerHealthCheck {
        command: with_task_port(&command, container_port),
        interval,
        timeout: check.timeout.min(interval),
        retries: check.retries,
        start_period: check.start_period.unwrap_or_default(),
    }
}

/// Replaces `:<port>` (not followed by another digit) with `:$PORT`.
fn with_task_port(command: &str, port: u16) -> String {
    let needle = format!(":{port}");
    let mut out = String::with_capacity(command.len());
    let mut rest = command;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(":${PORT}");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn service_settings(
    service: &Service,
    image: &ImageRef,
    task_definition: String,
    traffic: Option<ServiceTraffic>,
) -> ServiceSettings {
    ServiceSettings {
        traffic,
        name: service.service_name.clone(),
        // Registering the scalable target brings the desired count within min..max.
        desired_count: service
            .autoscaling
            .as_ref()
            .map_or(service.desired_count, |a| {
                service.desired_count.clamp(a.min, a.max)
            }),
        configuration: DeploymentConfiguration {
            minimum_healthy_percent: service.deployment.minimum_healthy_percent,
            maximum_percent: service.deployment.maximum_percent,
        },
        grace_period: service.deployment.health_check_grace_period,
        target_group: Some(service.target_group.clone()),
        task_definition,
        image: format!("{}@{}", service.repository, image.digest),
        circuit_breaker: CircuitBreaker {
            enable: service.deployment.circuit_breaker.enable,
            rollback: service.deployment.circuit_breaker.rollback,
        },
    }
}

/// What `berth status` lists as deliberate local differences.
fn local_differences(stack: &Stack, environment: &Environment) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(service) = stack.services.first() {
        let local = stack.effective_health_check(service, environment);
        out.push(format!(
            "target health checks every {}s, timeout {}s, healthy after {}, unhealthy after {} (AWS: the services' own values)",
            local.interval.as_secs_f64(),
            local.timeout.as_secs_f64(),
            local.healthy_threshold,
            local.unhealthy_threshold
        ));
        out.push(format!(
            "deregistration delay {}s (AWS: {}s)",
            stack
                .effective_deregistration_delay(service, environment)
                .as_secs_f64(),
            service.deregistration_delay.as_secs_f64()
        ));
    }
    if let Some(local) = environment.as_local() {
        out.push(format!(
            "container health checks run at most every {}s; they probe the task's own port",
            local.health_check_interval.as_secs_f64()
        ));
        out.push(format!(
            "each log group keeps at most {} MiB, oldest events dropped first (CloudWatch: no cap)",
            local.log_group_max_mb
        ));
        if stack.services.iter().any(|s| s.autoscaling.is_some()) {
            out.push(format!(
                "autoscaling takes a metric datapoint every {}s (CloudWatch: 60s); its alarms still need 3 (out) and 15 (in) of them",
                local.metric_period.as_secs_f64()
            ));
        }
    }
    out.push("each task listens on its own port (PORT), not the container port".to_owned());
    out
}

/// A task's log stream id, for callers that need it (`berth logs`).
pub fn log_stream_name(service: &Service, task: &TaskId) -> String {
    format!(
        "{}/{}/{}",
        service.logs.stream_prefix, service.container_name, task
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_check_probes_the_task_port() {
        assert_eq!(
            with_task_port("curl -f http://localhost:3001/health || exit 1", 3001),
            "curl -f http://localhost:${PORT}/health || exit 1"
        );
        assert_eq!(with_task_port("nc -z host:30011", 3001), "nc -z host:30011");
    }

    #[test]
    fn cmd_arguments_are_quoted() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("http://x:1/y"), "http://x:1/y");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
