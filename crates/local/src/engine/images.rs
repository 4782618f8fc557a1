//! The engine's image store as berth's second registry: images built from a service's
//! Dockerfile are named `localhost/<repository>:<tag>`, tagged like the snapshots (git SHA,
//! `latest`), and the same keep-last-N lifecycle applies.

use std::path::{Path, PathBuf};

use berth_spec::ImageBuild;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Engine, EngineError, EngineKind};
use crate::registry::{BuildCommand, BuildError, BuildOutput, BuildRequest, run_build};

/// The registry host of the images berth builds: never pushed anywhere, and a name both
/// engines keep local.
pub const LOCAL_REGISTRY: &str = "localhost";

/// `localhost/<repository>`.
pub fn local_name(repository: &str) -> String {
    format!("{LOCAL_REGISTRY}/{repository}")
}

/// One `build` of a service's Dockerfile.
#[derive(Debug, Clone)]
pub struct ImageBuildRequest<'a> {
    pub build: &'a ImageBuild,
    pub repository: &'a str,
    /// Tags besides `latest` (the git revision).
    pub tags: &'a [String],
    /// Where the engine writes the image id (`--iidfile`): the build's artifact.
    pub iidfile: &'a Path,
}

/// The engine's arguments for a build (after the program): pure, so tests pin them.
pub fn build_args(kind: EngineKind, request: &ImageBuildRequest<'_>) -> Vec<String> {
    let name = local_name(request.repository);
    let mut args = vec!["build".to_owned()];
    if kind == EngineKind::Podman {
        // OCI images have no HEALTHCHECK; docker's format keeps it (podman warns otherwise).
        // The host's network: a build's `RUN` reaches package mirrors the way the host does.
        args.extend(["--format", "docker", "--network", "host"].map(String::from));
    }
    args.push("--file".into());
    args.push(request.build.dockerfile.display().to_string());
    if let Some(target) = &request.build.target {
        args.push("--target".into());
        args.push(target.clone());
    }
    for (name, value) in &request.build.args {
        args.push("--build-arg".into());
        args.push(format!("{name}={value}"));
    }
    for tag in request.tags.iter().map(String::as_str).chain(["latest"]) {
        args.push("--tag".into());
        args.push(format!("{name}:{tag}"));
    }
    args.push("--iidfile".into());
    args.push(request.iidfile.display().to_string());
    args.push(request.build.context.display().to_string());
    args
}

/// One image of a repository in the engine's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineImage {
    /// `localhost/<repository>`.
    pub repository: String,
    /// `sha256:<hex>`, the image id.
    pub id: String,
    /// The tags under `repository` (`abc123`, `latest`).
    pub tags: Vec<String>,
    pub created: DateTime<Utc>,
    /// Bytes, as the engine reports them.
    pub size: u64,
}

/// One line of `image inspect`'s template output.
const INSPECT_FORMAT: &str = "{{.Id}}\t{{json .Created}}\t{{.Size}}\t{{json .RepoTags}}";

impl Engine {
    /// The images of `localhost/<repository>`, newest first.
    pub async fn images(&self, repository: &str) -> Result<Vec<EngineImage>, EngineError> {
        let name = local_name(repository);
        let ids = self
            .output(&["images", "--quiet", "--no-trunc", &name])
            .await?;
        let mut ids: Vec<&str> = ids
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["image", "inspect", "--format", INSPECT_FORMAT];
        args.extend(ids);
        let text = self.output(&args).await?;
        let mut images = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                parse_inspect_line(line, &name).ok_or_else(|| EngineError::BadOutput {
                    program: self.program.clone(),
                    verb: "image inspect".into(),
                    output: line.chars().take(200).collect(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        images.sort_by_key(|image| std::cmp::Reverse(image.created));
        Ok(images)
    }

    /// Builds a service's image (see [`build_args`]), every output line to `on_output` and
    /// the whole output into `log_file`, as a process build's; returns the image id.
    pub async fn build(
        &self,
        request: &ImageBuildRequest<'_>,
        log_file: PathBuf,
        on_output: impl FnMut(&BuildOutput),
    ) -> Result<String, BuildError> {
        // A stale id file would pass for this build's artifact.
        let _ = std::fs::remove_file(request.iidfile);
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(build_args(self.kind, request));
        let build = BuildRequest {
            command: BuildCommand::Exec(argv),
            context: request.build.context.clone(),
            artifact: request.iidfile.to_path_buf(),
            log_file,
        };
        let result = run_build(&build, on_output).await?;
        std::fs::read_to_string(&result.artifact)
            .map(|id| id.trim().to_owned())
            .map_err(|_| BuildError::ArtifactMissing {
                path: result.artifact,
            })
    }

    /// Keeps the newest `keep_last` images of the repository and removes the others, except
    /// those a container uses (the engine refuses to remove them; they are kept and tried
    /// again after the next build). Returns the removed images.
    pub async fn apply_lifecycle(
        &self,
        repository: &str,
        keep_last: usize,
    ) -> Result<Vec<EngineImage>, EngineError> {
        let mut removed = Vec::new();
        for image in self.images(repository).await?.into_iter().skip(keep_last) {
            let references: Vec<String> = image
                .tags
                .iter()
                .map(|tag| format!("{}:{tag}", image.repository))
                .collect();
            let mut args = vec!["rmi"];
            args.extend(references.iter().map(String::as_str));
            match self.output(&args).await {
                Ok(_) => removed.push(image),
                Err(EngineError::Failed { stderr, .. }) => {
                    tracing::info!(image = %image.id, %stderr, "lifecycle: image kept (in use)");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// The id of the image `reference` names, if the store has it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        match self
            .output(&["image", "inspect", "--format", "{{.Id}}", reference])
            .await
        {
            Ok(id) => Ok(Some(id.trim().to_owned())),
            Err(EngineError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `<id>\t<created as JSON>\t<size>\t<tags as JSON>`: the tags under `name` only.
fn parse_inspect_line(line: &str, name: &str) -> Option<EngineImage> {
    let mut fields = line.split('\t');
    let id = fields.next()?.trim();
    let created: DateTime<Utc> = serde_json::from_str(fields.next()?).ok()?;
    let size = fields.next()?.trim().parse().ok()?;
    // An untagged image's tags are `null` in docker's output.
    let all_tags: Option<Vec<String>> = serde_json::from_str(fields.next()?).ok()?;
    let all_tags = all_tags.unwrap_or_default();
    let prefix = format!("{name}:");
    let tags = all_tags
        .iter()
        .filter_map(|t| t.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect();
    let id = if id.contains(':') {
        id.to_owned()
    } else {
        format!("sha256:{id}")
    };
    Some(EngineImage {
        repository: name.to_owned(),
        id,
        tags,
        created,
        size,
    })
}

/// The iid file of a service's image build, next to its build log.
pub fn iidfile(registry_dir: &Path, service: &str) -> PathBuf {
    registry_dir.join(format!("{service}.image-id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_builds_keep_the_healthcheck_and_tag_sha_and_latest() {
        let build = ImageBuild {
            context: "/repo".into(),
            dockerfile: "/repo/apps/api/Dockerfile".into(),
            target: Some("runtime".into()),
            args: [("PROFILE".to_owned(), "berth".to_owned())].into(),
        };
        let request = ImageBuildRequest {
            build: &build,
            repository: "backend-repo",
            tags: &["0123abcd".into()],
            iidfile: Path::new("/s/backend.image-id"),
        };
        assert_eq!(
            build_args(EngineKind::Podman, &request).join(" "),
            "build --format docker --network host --file /repo/apps/api/Dockerfile \
             --target runtime --build-arg PROFILE=berth \
             --tag localhost/backend-repo:0123abcd --tag localhost/backend-repo:latest \
             --iidfile /s/backend.image-id /repo"
        );
        assert!(!build_args(EngineKind::Docker, &request).contains(&"--format".to_owned()));
    }

    #[test]
    fn inspect_lines_of_podman_and_docker() {
        let podman = "sha256:f1452e\t\"2026-12-07T05:54:42.123456789Z\"\t232000000\t\
                      [\"localhost/backend-repo:abc\",\"localhost/backend-repo:latest\",\"other:x\"]";
        let image = parse_inspect_line(podman, "localhost/backend-repo").unwrap();
        assert_eq!(image.tags, ["abc", "latest"]);
        assert_eq!(image.size, 232_000_000);
        let docker = "sha256:f1452e\t\"2026-12-07T05:54:42Z\"\t10\tnull";
        assert_eq!(
            parse_inspect_line(docker, "localhost/x").unwrap().tags,
            Vec::<String>::new()
        );
        assert!(parse_inspect_line("garbage", "localhost/x").is_none());
    }
}
