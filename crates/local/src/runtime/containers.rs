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

/// `berth down` when no berth answers: removes the containers a killed berth of this
/// stack left (their `run` clients are the task processes recovery stops). `Ok(0)` when no
/// service has an image or no engine is here.
pub async fn remove_left_containers(
    stack: &Stack,
    environment: &berth_spec::Environment,
) -> Result<usize, UpError> {
    if stack.services.iter().all(|s| s.image.is_none()) {
        return Ok(0);
    }
    let state = super::up::state_dir(stack, environment)?;
    match Engine::available().await.map_err(UpError::Engine)? {
        Some(engine) => remove_leftovers(&engine, &state_label(&state))
            .await
            .map_err(UpError::Engine),
        None => Ok(0),
    }
}

/// The value of [`STATE_LABEL`] for this stack: its state directory.
pub(super) fn state_label(state: &StateDir) -> String {
    state.root().display().to_string()
}

/// Which image of a Dockerfile service a revision runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pick<'a> {
    /// `latest`, built now when the engine's store has none (`berth up`).
    LatestOrBuild,
    /// A fresh build of the source as it is now (`berth deploy`).
    Build,
    /// An image already built, by tag (`berth deploy --image TAG`).
    Tag(&'a str),
}

/// The image a container service runs, pinned by its id (a Dockerfile service) or the
/// stack's reference, as the task template of a container task.
pub(super) async fn ensure_image(
    stack: &Stack,
    service: &Service,
    image: &Image,
    pick: Pick<'_>,
    state: &StateDir,
    engine: &Engine,
    progress: &Progress,
) -> Result<ImageRef, UpError> {
    let reference = match (image, pick) {
        (Image::Reference(reference), _) => reference.clone(),
        (Image::Dockerfile(build), pick) => {
            let tagged = |tag: &str| format!("{}:{tag}", local_name(&service.repository));
            let existing = match pick {
                Pick::LatestOrBuild => engine
                    .image_id(&tagged("latest"))
                    .await
                    .map_err(UpError::Engine)?,
                Pick::Tag(tag) => Some(
                    engine
                        .image_id(&tagged(tag))
                        .await
                        .map_err(UpError::Engine)?
                        .ok_or_else(|| UpError::NoContainerImage {
                            reference: tagged(tag),
                        })?,
                ),
                Pick::Build => None,
            };
            match existing {
                Some(id) => id,
                None => build_image(stack, service, build, state, engine, progress).await?,
            }
        }
    };
    progress(RuntimeEvent::Progress {
        message: format!("{}: container image {reference}", service.name),
    });
    Ok(container_ref(service, reference, state, engine))
}

async fn build_image(
    stack: &Stack,
    service: &Service,
    build: &berth_spec::ImageBuild,
    state: &StateDir,
    engine: &Engine,
    progress: &Progress,
) -> Result<String, UpError> {
    progress(RuntimeEvent::Progress {
        message: format!(
            "{}: building {} with {}",
            service.name,
            build.dockerfile.display(),
            engine.kind.name()
        ),
    });
    let tags: Vec<String> = git_revision(&stack.root).iter().map(|r| r.tag()).collect();
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
        })
}

fn container_ref(
    service: &Service,
    reference: String,
    state: &StateDir,
    engine: &Engine,
) -> ImageRef {
    ImageRef {
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
    }
}
