//! Revisions for `berth deploy`: the stack file read as it is now, the service built (or an
//! image already in the registry picked by tag), registered as `<family>:<n>` with the
//! launcher, so that the scheduler can roll it out and roll back to an earlier one; and the
//! strategy to deploy it with, from the same file (or `--strategy`, once).

use std::path::Path;
use std::sync::Arc;

use super::containers::{self, Pick};
use super::launcher::StackLauncher;
use super::revisions::RevisionNumbers;
use super::traffic::DEFAULT_HOOK_TIMEOUT;
use super::up::{ImageRef, Progress, build_image, local_environment, task_template};
use crate::engine::{self, Artifact, Engine};
use crate::registry::{LATEST, Registry};
use crate::service::shift::{ShiftPlan, Shifting};
use crate::service::{BoxFuture, DeploymentConfiguration, Revision, ServiceUpdate};
use crate::state_dir::StateDir;
use berth_spec::{Service, Strategy};

/// A registered revision and how to deploy it.
#[derive(Debug, Clone)]
pub struct Release {
    pub revision: Revision,
    /// `None`: a rolling deployment.
    pub shift: Option<ShiftPlan>,
    /// The service settings the stack file gives with it: what ECS's UpdateService takes
    /// in the same call.
    pub update: ServiceUpdate,
}

/// Makes new revisions of a running stack's services.
pub trait Releases: Send + Sync + 'static {
    /// Reads `stack_file`, builds `service` if it has a build (or resolves `image`, a tag in
    /// the registry), and registers the result as the service's next revision, to deploy with
    /// the file's strategy or `strategy`. The error is the whole cause chain, for the user.
    fn register<'a>(
        &'a self,
        stack_file: &'a Path,
        service: &'a str,
        image: Option<&'a str>,
        strategy: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Release, String>>;
}

/// The traffic-shifting plan for `service` from its stack file, with `--strategy` applied: the
/// file's parameters when it names the same strategy, ECS's defaults otherwise.
pub fn shift_plan(service: &Service, strategy: Option<&str>) -> Result<Option<ShiftPlan>, String> {
    let file = &service.deployment.strategy;
    let chosen = match strategy {
        None => file.clone(),
        Some(kind) if kind == file.kind() => file.clone(),
        Some(kind) => Strategy::defaults(kind).ok_or_else(|| {
            format!(
                "\"{kind}\" is not a deployment strategy: rolling, blue_green, canary or linear"
            )
        })?,
    };
    let strategy = match chosen {
        Strategy::Rolling => return Ok(None),
        Strategy::BlueGreen { bake_time } => Shifting::BlueGreen { bake_time },
        Strategy::Canary {
            percent,
            canary_bake,
            bake_time,
        } => Shifting::Canary {
            percent,
            canary_bake,
            bake_time,
        },
        Strategy::Linear {
            step_percent,
            step_bake,
            bake_time,
        } => Shifting::Linear {
            step_percent,
            step_bake,
            bake_time,
        },
    };
    let wiring = service.deployment.traffic.as_ref();
    Ok(Some(ShiftPlan {
        strategy,
        hooks: wiring.map(|w| w.hooks.clone()).unwrap_or_default(),
        hook_timeout: wiring.map_or(DEFAULT_HOOK_TIMEOUT, |w| w.hook_timeout),
        test_listener_port: wiring.and_then(|w| w.test_listener_port),
    }))
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
    /// The last revision registered per task family, kept across restarts.
    pub(super) revisions: Arc<RevisionNumbers>,
}

impl StackReleases {
    async fn make(
        &self,
        stack_file: &Path,
        service: &str,
        image: Option<&str>,
        strategy: Option<&str>,
    ) -> Result<Release, String> {
        let stack = berth_spec::load(stack_file).map_err(|e| crate::error_chain(&e))?;
        if stack.name != self.stack {
            return Err(format!(
                "{} describes stack `{}`, but the berth running here runs `{}`",
                stack_file.display(),
                stack.name,
                self.stack
            ));
        }
        let environment =
            local_environment(&stack, &self.environment).map_err(|e| crate::error_chain(&e))?;
        let local = environment
            .as_local()
            .expect("local_environment checked it");
        let svc = stack
            .services
            .iter()
            .find(|s| s.service_name == service || s.name == service)
            .ok_or_else(|| format!("{} has no service `{service}`", stack_file.display()))?;
        let shift = shift_plan(svc, strategy)?;
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
                .map_err(|e| crate::error_chain(&e))?
            }
            _ => {
                let registry = Registry::open(&self.state).map_err(|e| crate::error_chain(&e))?;
                let built = match (image, &svc.build) {
                    (Some(tag), _) => registry
                        .resolve(&svc.repository, tag)
                        .map_err(|e| crate::error_chain(&e))?,
                    (None, Some(_)) => {
                        build_image(&stack, svc, &self.state, &registry, &self.progress)
                            .await
                            .map_err(|e| crate::error_chain(&e))?
                    }
                    (None, None) => registry
                        .resolve(&svc.repository, LATEST)
                        .map_err(|e| crate::error_chain(&e))?,
                };
                ImageRef {
                    path: built.path,
                    digest: built.digest,
                    container: None,
                }
            }
        };
        let n = self
            .revisions
            .next(&svc.task_family)
            .map_err(|e| crate::error_chain(&e))?;
        let task_definition = format!("{}:{n}", svc.task_family);
        let reference = format!("{}@{}", svc.repository, image.digest);
        self.launcher
            .templates
            .insert(task_definition.clone(), task_template(svc, image, local));
        Ok(Release {
            revision: Revision {
                task_definition,
                image: reference,
            },
            shift,
            update: ServiceUpdate {
                // With autoscaling, the desired count is the scaler's, not the file's.
                desired_count: svc.autoscaling.is_none().then_some(svc.desired_count),
                configuration: DeploymentConfiguration {
                    minimum_healthy_percent: svc.deployment.minimum_healthy_percent,
                    maximum_percent: svc.deployment.maximum_percent,
                },
                grace_period: svc.deployment.health_check_grace_period,
            },
        })
    }
}

impl Releases for StackReleases {
    fn register<'a>(
        &'a self,
        stack_file: &'a Path,
        service: &'a str,
        image: Option<&'a str>,
        strategy: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Release, String>> {
        Box::pin(self.make(stack_file, service, image, strategy))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn service(deployment: &str) -> Service {
        let text = format!(
            "[stack]\nname = \"demo\"\n[services.web]\nport = 80\ndeployment = {deployment}\n"
        );
        let stack = berth_spec::parse(&text, "berth.toml", Path::new("/app")).unwrap();
        stack.services[0].clone()
    }

    /// `berth deploy --strategy`: the file's parameters when it names the same strategy,
    /// ECS's defaults otherwise (S3.4, S3.6), rolling as no plan, a typo refused.
    #[test]
    fn the_strategy_override_takes_the_files_parameters_or_the_defaults() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let canary = service(
            r#"{ strategy = "canary", canary_percent = 20, canary_bake = "1m", hooks = { pre_scale_up = "true" }, hook_timeout = "3m" }"#,
        );
        let plan = shift_plan(&canary, None).unwrap().unwrap();
        assert_eq!(
            plan.strategy,
            Shifting::Canary {
                percent: 20.0,
                canary_bake: minutes(1),
                bake_time: minutes(5)
            }
        );
        assert_eq!(plan.hook_timeout, minutes(3));
        assert_eq!(plan.hooks.len(), 1);
        assert_eq!(shift_plan(&canary, Some("canary")).unwrap(), Some(plan));
        assert_eq!(shift_plan(&canary, Some("rolling")).unwrap(), None);
        let linear = shift_plan(&canary, Some("linear")).unwrap().unwrap();
        assert_eq!(
            linear.strategy,
            Shifting::Linear {
                step_percent: 10.0,
                step_bake: minutes(6),
                bake_time: minutes(5)
            }
        );
        let rolling = service(r#"{ strategy = "rolling" }"#);
        assert_eq!(shift_plan(&rolling, None).unwrap(), None);
        let blue_green = shift_plan(&rolling, Some("blue_green")).unwrap().unwrap();
        assert_eq!(
            blue_green.strategy,
            Shifting::BlueGreen {
                bake_time: minutes(5)
            }
        );
        assert_eq!(blue_green.hook_timeout, DEFAULT_HOOK_TIMEOUT);
        assert!(blue_green.hooks.is_empty() && blue_green.test_listener_port.is_none());
        let error = shift_plan(&rolling, Some("bluegreen")).unwrap_err();
        assert!(
            error.contains("\"bluegreen\" is not a deployment strategy"),
            "{error}"
        );
    }
}
