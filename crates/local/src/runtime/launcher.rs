//! Starting a service's task: image, environment, secrets read at start (S7.8–S7.9), its own
//! port, its log stream.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::RunStateFile;
use crate::cleanup::{RunTask, process_start_time};
use crate::engine::Engine;
use crate::service::{BoxFuture, TaskLauncher};
use crate::task::{
    ContainerHealthCheck, ContainerNetwork, ContainerRun, SecretValue, Task, TaskId, TaskOutput,
    TaskSpec, TaskUser, free_port,
};

/// Reads secrets from the parameter store at task start.
pub trait SecretSource: Send + Sync + 'static {
    /// `(variable, parameter name)` pairs → `(variable, value)`. The error is the
    /// `ResourceInitializationError` text ECS would record (it names the parameters, never
    /// a value).
    fn resolve(&self, secrets: &[(String, String)]) -> Result<Vec<(String, SecretValue)>, String>;
}

/// Opens a task's log stream.
pub trait LogStreams: Send + Sync + 'static {
    fn open(&self, service: &str, task: &TaskId) -> TaskOutput;
}

/// Secrets nobody defines: every lookup fails as a missing parameter would.
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn resolve(&self, secrets: &[(String, String)]) -> Result<Vec<(String, SecretValue)>, String> {
        match secrets.first() {
            None => Ok(Vec::new()),
            Some(_) => Err(missing_parameters(secrets.iter().map(|(_, p)| p.as_str()))),
        }
    }
}

/// ECS's wording for parameters that cannot be read (S7.10).
pub fn missing_parameters<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    format!(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: {}",
        names.join(" ")
    )
}

/// How one service's tasks are made: the task definition, locally.
#[derive(Debug, Clone)]
pub struct TaskTemplate {
    /// The registry snapshot's executable.
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
    pub environment: Vec<(String, String)>,
    /// `(variable, parameter name)`.
    pub secrets: Vec<(String, String)>,
    pub stop_timeout: Duration,
    pub health_check: Option<ContainerHealthCheck>,
    /// Run from this image as a container (`executable` is then unused); the kind is the
    /// launcher's business only: the scheduler and the balancer see a task and its port.
    pub container: Option<ContainerTemplate>,
}

/// A container task's part of its template: every task gets its own container name.
#[derive(Debug, Clone)]
pub struct ContainerTemplate {
    pub engine: Engine,
    pub image: String,
    pub container_port: u16,
    pub network: ContainerNetwork,
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub labels: Vec<(String, String)>,
}

impl ContainerTemplate {
    fn for_task(&self, id: &TaskId) -> ContainerRun {
        ContainerRun {
            engine: self.engine.clone(),
            image: self.image.clone(),
            container_port: self.container_port,
            network: self.network,
            cpu_units: self.cpu_units,
            memory_mib: self.memory_mib,
            labels: self.labels.clone(),
            name: format!("berth-{id}"),
            engine_secrets: None,
        }
    }
}

/// Task templates by revision (`<family>:<n>`): `berth deploy` adds one while tasks of the
/// earlier revisions still start from theirs (a rollback returns to one).
#[derive(Default)]
pub struct Templates(RwLock<HashMap<String, TaskTemplate>>);

impl Templates {
    pub fn insert(&self, revision: String, template: TaskTemplate) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(revision, template);
    }

    fn get(&self, revision: &str) -> Option<TaskTemplate> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(revision)
            .cloned()
    }
}

impl FromIterator<(String, TaskTemplate)> for Templates {
    fn from_iter<I: IntoIterator<Item = (String, TaskTemplate)>>(iter: I) -> Self {
        Self(RwLock::new(iter.into_iter().collect()))
    }
}

/// The [`TaskLauncher`] of the runtime: one template per revision.
pub struct StackLauncher {
    pub templates: Templates,
    pub secrets: Arc<dyn SecretSource>,
    pub logs: Option<Arc<dyn LogStreams>>,
    /// Where each started task is recorded for recovery before `launch` returns.
    pub state_file: Option<Arc<RunStateFile>>,
    /// The account tasks run as (`berth-task` when berth is root); `None`: berth's own.
    pub user: Option<TaskUser>,
}

impl StackLauncher {
    async fn start(&self, service: &str, revision: &str, id: TaskId) -> Task {
        let Some(template) = self.templates.get(revision) else {
            return Task::failed_to_start(
                id,
                format!(
                    "ResourceInitializationError: no task definition {revision} for service {service}"
                ),
            );
        };
        let secrets = match self.secrets.resolve(&template.secrets) {
            Ok(secrets) => secrets,
            Err(reason) => return Task::failed_to_start(id, reason),
        };
        let port = match free_port() {
            Ok(port) => port,
            Err(error) => {
                return Task::failed_to_start(
                    id,
                    format!("ResourceInitializationError: no free port: {error}"),
                );
            }
        };
        let output = self
            .logs
            .as_ref()
            .map_or(TaskOutput::Null, |logs| logs.open(service, &id));
        let spec = TaskSpec {
            executable: template.executable.clone(),
            args: template.args.clone(),
            env: template.environment.clone(),
            secrets,
            working_dir: template.working_dir.clone(),
            stop_timeout: template.stop_timeout,
            health_check: template.health_check.clone(),
            output,
            user: self.user.clone(),
            container: template.container.as_ref().map(|c| c.for_task(&id)),
        };
        let task = Task::launch(id, spec, port).await;
        self.record(service, &task);
        task
    }

    /// Puts a started task in the recovery file, so that a berth killed from now on leaves
    /// it findable (the runtime's own rewrites lag behind).
    fn record(&self, service: &str, task: &Task) {
        let Some(file) = &self.state_file else {
            return;
        };
        let snapshot = task.snapshot();
        let Some(pid) = snapshot.pid else {
            return;
        };
        // None: it has already exited (recovery could not tell its group from another).
        let Some(start_time) = process_start_time(pid) else {
            return;
        };
        let record = RunTask {
            service: service.to_owned(),
            task_id: task.id().to_string(),
            pid,
            start_time: Some(start_time),
            port: snapshot.port,
            stop_timeout: task.stop_timeout(),
        };
        if let Err(error) = file.task_started(record) {
            tracing::warn!(%error, service, "cannot record a started task for recovery");
        }
    }
}

impl TaskLauncher for StackLauncher {
    fn launch<'a>(
        &'a self,
        service: &'a str,
        task_definition: &'a str,
        id: TaskId,
    ) -> BoxFuture<'a, Task> {
        Box::pin(self.start(service, task_definition, id))
    }
}
