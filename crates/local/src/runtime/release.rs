//! Revisions for `berth deploy`: the stack file read as it is now, the service built (or an
//! image already in the registry picked by tag), registered as `<family>:<n>` with the
//! launcher, so that the scheduler can roll it out and roll back to an earlier one.

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::containers::{self, Pick};
use super::launcher::StackLauncher;
use super::up::{ImageRef, Progress, build_image, local_environment, task_template};
use crate::engine::{self, Artifact, Engine};
use crate::registry::{LATEST, Registry};
use crate::service::{BoxFuture, Revision};
use crate::state_dir::StateDir;

/// Makes new revisions of a running stack's services.
pub trait Releases: Send + Sync + 'static {
    /// Reads `stack_file`, builds `service` if it has a build (or resolves `image`, a tag in
    /// the registry), and registers the result as the service's next revision. The error is
    /// the whole cause chain, for the user.
    fn register<'a>(
        &'a self,
        stack_file: &'a Path,
        service: &'a str,
        image: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Revision, String>>;
}

/// [`Releases`] of the embedded runtime.
pub struct StackReleases {
    pub(super) stack: String,
    pub(super) environment: String,
    pub(super) state: StateDir,
    pub(super) launcher: Arc<StackLauncher>,
    pub(super) progress: Progress,
    /// The engine that runs the stack's image services (`None`: they run as processes).
    pub(super) engine: Option<Engine>,
    /// The last revision registered per task family (`berth up` registers `:1`).
    pub(super) revisions: Mutex<HashMap<String, u32>>,
}

impl StackReleases {
    async fn make(
        &self,
        stack_file: &Path,
        service: &str,
        image: Option<&str>,
    ) -> Result<Revision, String> {
        let stack = berth_spec::load(stack_file).map_err(|e| chain(&e))?;
        if stack.name != self.stack {
            return Err(format!(
                "{} describes stack `{}`, but the berth running here runs `{}`",
                stack_file.display(),
                stack.name,
                self.stack
            ));
        }
        let environment = local_environment(&stack, &self.environment).map_err(|e| chain(&e))?;
        let local = environment
            .as_local()
            .expect("local_environment checked it");
        let svc = stack
            .services
            .iter()
            .find(|s| s.service_name == service || s.name == service)
            .ok_or_else(|| format!("{} has no service `{service}`", stack_file.display()))?;
        let image = match (&self.engine, engine::artifact(svc, self.engine.is_some())) {
            // A container service: a fresh image of the source as it is now, or a tag.
            (Some(engine), Some(Artifact::Image(spec_image))) => {
                let pick = image.map_or(Pick::Build, Pick::Tag);
                containers::ensure_image(
                    &stack,
                    svc,
                    spec_image,
                    pick,
                    &self.state,
                    engine,
                    &self.progress,
                )
                .await
                .map_err(|e| chain(&e))?
            }
            _ => {
                let registry = Registry::open(&self.state).map_err(|e| chain(&e))?;
                let built = match (image, &svc.build) {
                    (Some(tag), _) => registry
                        .resolve(&svc.repository, tag)
                        .map_err(|e| chain(&e))?,
                    (None, Some(_)) => {
                        build_image(&stack, svc, &self.state, &registry, &self.progress)
                            .await
                            .map_err(|e| chain(&e))?
                    }
                    (None, None) => registry
                        .resolve(&svc.repository, LATEST)
                        .map_err(|e| chain(&e))?,
                };
                ImageRef {
                    path: built.path,
                    digest: built.digest,
                    container: None,
                }
            }
        };
        let n = {
            let mut revisions = self.revisions.lock().unwrap_or_else(|e| e.into_inner());
            let n = revisions.entry(svc.task_family.clone()).or_insert(1);
            *n += 1;
            *n
        };
        let task_definition = format!("{}:{n}", svc.task_family);
        let reference = format!("{}@{}", svc.repository, image.digest);
        self.launcher
            .templates
            .insert(task_definition.clone(), task_template(svc, image, local));
        Ok(Revision {
            task_definition,
            image: reference,
        })
    }
}

impl Releases for StackReleases {
    fn register<'a>(
        &'a self,
        stack_file: &'a Path,
        service: &'a str,
        image: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Revision, String>> {
        Box::pin(self.make(stack_file, service, image))
    }
}

/// `error: cause: cause`, as the CLI would print it.
fn chain(error: &dyn Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
