//! `berth up`'s container side: whether an engine runs the services that have images (and
//! a clear note when none does), removing the containers a killed berth left, and making
//! sure each image service has its image (built from its Dockerfile when the engine's store
//! has none yet).

use berth_spec::{Image, Service, Stack};

use super::up::{ImageRef, Progress, UpError};
use super::{ContainerTemplate, RuntimeEvent};
use crate::engine::{Engine, ImageBuildRequest, iidfile, local_name};
use crate::registry::git_revision;
use crate::state_dir::StateDir;
use crate::task::{ContainerNetwork, STATE_LABEL, remove_leftovers};

/// The label naming a container's service (for people reading `podman ps`).
const SERVICE_LABEL: &str = "berth.service";

/// The engine when a service has an image and one is present; `None` (with a note saying
/// which services run as processes instead) when none is installed. An engine that is
/// installed but not answering is an error, not a silent fallback.
pub(super) async fn engine_for(
    stack: &Stack,
    state: &StateDir,
    progress: &Progress,
) -> Result<Option<Engine>, UpError> {
    let with_images: Vec<&str> = stack
        .services
        .iter()
        .filter(|s| s.image.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if with_images.is_empty() {
        return Ok(None);
    }
    let Some(engine) = Engine::available().await.map_err(UpError::Engine)? else {
        progress(RuntimeEvent::Progress {
            message: format!(
                "no container engine (podman or docker) here: {} run as processes from their builds instead of their images",
                with_images.join(", ")
            ),
        });
        return Ok(None);
    };
    let removed = remove_leftovers(&engine, &state_label(state))
        .await
        .map_err(UpError::Engine)?;
    if removed > 0 {
        progress(RuntimeEvent::Progress {
            message: format!("removed {removed} container(s) a previous berth left"),
        });
    }
    progress(RuntimeEvent::Progress {
        message: format!(
            "{} run as containers ({})",
            with_images.join(", "),
            engine.program.display()
        ),
    });
    Ok(Some(engine))
}

/// The value of [`STATE_LABEL`] for this stack: its state directory.
pub(super) fn state_label(state: &StateDir) -> String {
    state.root().display().to_string()
}

/// The image a container service runs: `localhost/<repository>:latest` (built now when the
/// store has none) pinned by its id, or the stack's reference.
pub(super) async fn ensure_image(
    stack: &Stack,
    service: &Service,
    image: &Image,
    state: &StateDir,
    engine: &Engine,
    progress: &Progress,
) -> Result<ImageRef, UpError> {
    let reference = match image {
        Image::Reference(reference) => reference.clone(),
        Image::Dockerfile(build) => {
            let latest = format!("{}:latest", local_name(&service.repository));
            match engine.image_id(&latest).await.map_err(UpError::Engine)? {
                Some(id) => id,
                None => {
                    progress(RuntimeEvent::Progress {
                        message: format!(
                            "{}: no image yet, building {} with {}",
                            service.name,
                            build.dockerfile.display(),
                            engine.kind.name()
                        ),
                    });
                    let tags: Vec<String> =
                        git_revision(&stack.root).iter().map(|r| r.tag()).collect();
                    let iid = iidfile(&state.registry(), &service.name);
                    let request = ImageBuildRequest {
                        build,
                        repository: &service.repository,
                        tags: &tags,
                        iidfile: &iid,
                    };
                    let log_file = state.registry().join(format!("{}.build.log", service.name));
                    let name = service.name.clone();
                    engine
                        .build(&request, log_file, |line| {
                            progress(RuntimeEvent::Progress {
                                message: format!("{name}: {}", line.line()),
                            });
                        })
                        .await
                        .map_err(|source| UpError::ImageBuild {
                            service: service.name.clone(),
                            source,
                        })?
                }
            }
        }
    };
    progress(RuntimeEvent::Progress {
        message: format!("{}: container image {reference}", service.name),
    });
    Ok(ImageRef {
        path: Default::default(),
        digest: reference.clone(),
        container: Some(ContainerTemplate {
            engine: engine.clone(),
            image: reference,
            container_port: service.port,
            // The stack's PostgreSQL and balancer listen on loopback, which a container's own
            // network cannot reach: `up` runs containers on the host's network, each on its
            // task's port, as process tasks run.
            network: ContainerNetwork::Host,
            cpu_units: service.cpu,
            memory_mib: service.memory,
            labels: vec![
                (STATE_LABEL.to_owned(), state_label(state)),
                (SERVICE_LABEL.to_owned(), service.name.clone()),
            ],
        }),
    })
}
