//! The local image registry: build artifacts snapshotted by content digest, tagged like ECR.
//!
//! `.berth/registry/<repository>/` holds one read-only directory per image,
//! `<digest>/<artifact-name>`, and `index.json` with each image's tags and push time. Tasks run
//! from these snapshots, never from the build's output, so old and new versions can run side
//! by side and a rollback has something to roll back to.

mod build;
mod digest;
mod git;
mod in_use;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use build::{
    BuildCommand, BuildError, BuildOutput, BuildRequest, BuildResult, check_artifact_kind,
    run_build,
};
pub use digest::{digest_path, is_digest};
pub use git::{GitRevision, git_revision};
pub use in_use::digests_in_use;

use crate::state_dir::{self, FsError, StateDir};

/// ECR's default lifecycle in the seed: keep the last 10 images.
pub const DEFAULT_KEEP_LAST: usize = 10;

/// The tag every push moves to the newest image.
pub const LATEST: &str = "latest";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "invalid repository name {name:?}: use lowercase letters, digits and . _ - / (2 to 256 characters, starting and ending with a letter or digit)"
    )]
    InvalidRepository { name: String },
    #[error(
        "invalid tag {tag:?}: use letters, digits, _ . - (1 to 128 characters, not starting with . or -)"
    )]
    InvalidTag { tag: String },
    #[error("repository {repository} has no image {reference}")]
    ImageNotFound {
        repository: String,
        reference: String,
    },
    #[error(
        "tag {tag} of repository {repository} already names other content, and the repository's tags are immutable"
    )]
    TagImmutable { repository: String, tag: String },
    #[error("artifact {} does not exist; did the build produce it?", path.display())]
    ArtifactMissing { path: PathBuf },
    #[error("corrupt registry index {}", path.display())]
    CorruptIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// One image of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Image {
    pub repository: String,
    /// `sha256:<hex>` of the artifact's content.
    pub digest: String,
    /// The read-only snapshot of the artifact (a file or a directory).
    pub path: PathBuf,
    pub tags: Vec<String>,
    /// The last time this content was pushed.
    pub pushed_at: DateTime<Utc>,
    /// Bytes of content (files only).
    pub size: u64,
}

/// What `index.json` records per image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    tags: Vec<String>,
    pushed_at: DateTime<Utc>,
    size: u64,
    /// File name of the artifact inside the digest directory.
    artifact: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// By digest.
    images: BTreeMap<String, IndexEntry>,
}

/// The registry under `.berth/registry`.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// Opens (creating if needed) the registry of a state directory.
    pub fn open(state: &StateDir) -> Result<Self, RegistryError> {
        let root = state.registry();
        state_dir::create_private_dir(&root)?;
        Ok(Self { root })
    }

    /// Snapshots `artifact` (a file or a directory) into `repository` and tags it with `tags`
    /// plus `latest`. Tags move: an existing tag is taken off the image that had it. Identical
    /// content is stored once; pushing it again only adds tags and refreshes its push time.
    pub fn push(
        &self,
        repository: &str,
        artifact: &Path,
        tags: &[String],
    ) -> Result<Image, RegistryError> {
        self.push_with_mutability(repository, artifact, tags, false)
    }

    /// [`Registry::push`] for a repository whose tags may be immutable (ECR's IMMUTABLE):
    /// then a tag in `tags` that names other content fails the push, before anything is
    /// stored. `latest` always moves: it names the newest push by definition.
    pub fn push_with_mutability(
        &self,
        repository: &str,
        artifact: &Path,
        tags: &[String],
        immutable_tags: bool,
    ) -> Result<Image, RegistryError> {
        validate_repository(repository)?;
        for tag in tags {
            validate_tag(tag)?;
        }
        let meta = fs::metadata(artifact).map_err(|_| RegistryError::ArtifactMissing {
            path: artifact.to_path_buf(),
        })?;
        let artifact_name = artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".to_owned());
        let repo_dir = self.repo_dir(repository);
        state_dir::create_private_dir(&repo_dir)?;
        let _lock = RepoLock::acquire(&repo_dir)?;

        // Copy first, hash the copy: what is hashed is exactly what is stored, even when the
        // build output changes under us.
        let staging = repo_dir.join(format!(".staging-{}", std::process::id()));
        if staging.exists() {
            remove_tree(&staging)?;
        }
        state_dir::create_private_dir(&staging)?;
        let staged = staging.join(&artifact_name);
        let copied = if meta.is_dir() {
            copy_tree(artifact, &staged)
        } else {
            copy_file(artifact, &staged)
        };
        let size = match copied {
            Ok(size) => size,
            Err(e) => {
                let _ = remove_tree(&staging);
                return Err(e.into());
            }
        };
        let digest = digest_path(&staged)?;
        if immutable_tags {
            let index = self.read_index(repository)?;
            let taken = tags.iter().filter(|t| t.as_str() != LATEST).find(|tag| {
                index
                    .images
                    .iter()
                    .any(|(d, entry)| *d != digest && entry.tags.contains(tag))
            });
            if let Some(tag) = taken {
                remove_tree(&staging)?;
                return Err(RegistryError::TagImmutable {
                    repository: repository.to_owned(),
                    tag: tag.clone(),
                });
            }
        }
        let image_dir = repo_dir.join(&digest);
        if image_dir.exists() {
            tracing::debug!(repository, %digest, "content already stored");
            remove_tree(&staging)?;
        } else {
            make_read_only(&staged)?;
            fs::rename(&staging, &image_dir)
                .map_err(|e| FsError::new("store snapshot", &image_dir, e))?;
            // The digest directory itself stays writable by its owner only for removal.
            state_dir::set_mode(&image_dir, 0o500)?;
        }

        let mut index = self.read_index(repository)?;
        let mut all_tags: Vec<String> = tags.to_vec();
        if !all_tags.iter().any(|t| t == LATEST) {
            all_tags.push(LATEST.to_owned());
        }
        for entry in index.images.values_mut() {
            entry.tags.retain(|t| !all_tags.contains(t));
        }
        let entry = index
            .images
            .entry(digest.clone())
            .or_insert_with(|| IndexEntry {
                tags: Vec::new(),
                pushed_at: Utc::now(),
                size,
                artifact: artifact_name.clone(),
            });
        entry.pushed_at = Utc::now();
        for tag in all_tags {
            if !entry.tags.contains(&tag) {
                entry.tags.push(tag);
            }
        }
        self.write_index(repository, &index)?;
        tracing::info!(repository, %digest, "image pushed");
        self.image(repository, &digest, &index)
    }

    /// The image a tag or digest names.
    pub fn resolve(&self, repository: &str, reference: &str) -> Result<Image, RegistryError> {
        validate_repository(repository)?;
        let index = self.read_index(repository)?;
        let digest = if is_digest(reference) {
            index
                .images
                .contains_key(reference)
                .then(|| reference.to_owned())
        } else {
            index
                .images
                .iter()
                .find(|(_, entry)| entry.tags.iter().any(|t| t == reference))
                .map(|(digest, _)| digest.clone())
        };
        let digest = digest.ok_or_else(|| RegistryError::ImageNotFound {
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        })?;
        self.image(repository, &digest, &index)
    }

    /// The images of a repository, newest first. An unknown repository has none.
    pub fn list(&self, repository: &str) -> Result<Vec<Image>, RegistryError> {
        validate_repository(repository)?;
        let index = self.read_index(repository)?;
        let mut images = index
            .images
            .keys()
            .map(|digest| self.image(repository, digest, &index))
            .collect::<Result<Vec<_>, _>>()?;
        images.sort_by(|a, b| {
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        Ok(images)
    }

    /// The repositories that have an index.
    pub fn repositories(&self) -> Result<Vec<String>, RegistryError> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(FsError::new("list", &self.root, e).into()),
        };
        for entry in entries.flatten() {
            if entry.path().join("index.json").is_file() {
                names.push(decode_repository(&entry.file_name().to_string_lossy()));
            }
        }
        names.sort();
        Ok(names)
    }

    /// ECR's "keep last N images" rule: removes all but the `keep_last` most recently pushed
    /// images, except the ones in `in_use` (digests of images running tasks use). Returns
    /// the removed images.
    pub fn apply_lifecycle(
        &self,
        repository: &str,
        keep_last: usize,
        in_use: &HashSet<String>,
    ) -> Result<Vec<Image>, RegistryError> {
        validate_repository(repository)?;
        let repo_dir = self.repo_dir(repository);
        if !repo_dir.is_dir() {
            return Ok(Vec::new());
        }
        let _lock = RepoLock::acquire(&repo_dir)?;
        let images = self.list(repository)?;
        let expired: Vec<Image> = images
            .into_iter()
            .skip(keep_last)
            .filter(|image| !in_use.contains(&image.digest))
            .collect();
        if expired.is_empty() {
            return Ok(expired);
        }
        let mut index = self.read_index(repository)?;
        for image in &expired {
            index.images.remove(&image.digest);
        }
        // Index first: a crash between the two leaves an orphan directory, never an index
        // entry pointing at nothing.
        self.write_index(repository, &index)?;
        for image in &expired {
            remove_tree(&repo_dir.join(&image.digest))?;
            tracing::info!(repository, digest = %image.digest, "image expired by lifecycle");
        }
        Ok(expired)
    }

    fn repo_dir(&self, repository: &str) -> PathBuf {
        self.root.join(encode_repository(repository))
    }

    fn index_path(&self, repository: &str) -> PathBuf {
        self.repo_dir(repository).join("index.json")
    }

    fn read_index(&self, repository: &str) -> Result<Index, RegistryError> {
        let path = self.index_path(repository);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| RegistryError::CorruptIndex { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(FsError::new("read", path, e).into()),
        }
    }

    fn write_index(&self, repository: &str, index: &Index) -> Result<(), RegistryError> {
        let path = self.index_path(repository);
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|source| RegistryError::CorruptIndex {
                path: path.clone(),
                source,
            })?;
        state_dir::write_file_atomic(&path, &bytes, 0o600)?;
        Ok(())
    }

    fn image(&self, repository: &str, digest: &str, index: &Index) -> Result<Image, RegistryError> {
        let entry = index
            .images
            .get(digest)
            .ok_or_else(|| RegistryError::ImageNotFound {
                repository: repository.to_owned(),
                reference: digest.to_owned(),
            })?;
        let mut tags = entry.tags.clone();
        tags.sort();
        Ok(Image {
            repository: repository.to_owned(),
            digest: digest.to_owned(),
            path: self.repo_dir(repository).join(digest).join(&entry.artifact),
            tags,
            pushed_at: entry.pushed_at,
            size: entry.size,
        })
    }
}

/// Serialises writers of one repository (two `berth build`s at once) with an advisory lock.
struct RepoLock {
    file: fs::File,
}

impl RepoLock {
    fn acquire(repo_dir: &Path) -> Result<Self, FsError> {
        let path = repo_dir.join(".lock");
        let file = state_dir::open_private_file(&path)?;
        file.lock().map_err(|e| FsError::new("lock", &path, e))?;
        Ok(Self { file })
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// ECR's repository name rule: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`,
/// 2 to 256 characters.
pub fn validate_repository(name: &str) -> Result<(), RegistryError> {
    let invalid = || RegistryError::InvalidRepository {
        name: name.to_owned(),
    };
    if !(2..=256).contains(&name.len()) {
        return Err(invalid());
    }
    for component in name.split('/') {
        let mut prev_sep = true;
        for c in component.chars() {
            match c {
                'a'..='z' | '0'..='9' => prev_sep = false,
                '.' | '_' | '-' if !prev_sep => prev_sep = true,
                _ => return Err(invalid()),
            }
        }
        if prev_sep {
            // Empty component, or one ending with a separator.
            return Err(invalid());
        }
    }
    Ok(())
}

/// The Docker/ECR tag rule: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), RegistryError> {
    let ok = (1..=128).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !tag.starts_with(['.', '-'])
        && !is_digest(tag);
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

/// Repository names may hold `/`; on disk they are one directory level (`+` never occurs in a
/// valid name).
fn encode_repository(name: &str) -> String {
    name.replace('/', "+")
}

fn decode_repository(dir: &str) -> String {
    dir.replace('+', "/")
}

fn copy_file(from: &Path, to: &Path) -> Result<u64, FsError> {
    fs::copy(from, to).map_err(|e| FsError::new("copy", from, e))
}

fn copy_tree(from: &Path, to: &Path) -> Result<u64, FsError> {
    fs::create_dir(to).map_err(|e| FsError::new("create directory", to, e))?;
    let mut size = 0;
    for entry in fs::read_dir(from).map_err(|e| FsError::new("list", from, e))? {
        let entry = entry.map_err(|e| FsError::new("list", from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| FsError::new("read metadata of", &src, e))?;
        if kind.is_dir() {
            size += copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| FsError::new("read link", &src, e))?;
            std::os::unix::fs::symlink(&target, &dst)
                .map_err(|e| FsError::new("create link", &dst, e))?;
        } else if kind.is_file() {
            size += copy_file(&src, &dst)?;
        }
    }
    Ok(size)
}

/// Snapshots are read-only (files 0444 or 0555, directories 0555) so a running task cannot
/// change the image other tasks run from.
fn make_read_only(path: &Path) -> Result<(), FsError> {
    let meta = fs::symlink_metadata(path).map_err(|e| FsError::new("read metadata of", path, e))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| FsError::new("list", path, e))? {
            let entry = entry.map_err(|e| FsError::new("list", path, e))?;
            make_read_only(&entry.path())?;
        }
        state_dir::set_mode(path, 0o555)
    } else {
        let exec = meta.permissions().mode() & 0o111 != 0;
        state_dir::set_mode(path, if exec { 0o555 } else { 0o444 })
    }
}

/// Removes a tree, first making read-only directories writable again.
fn remove_tree(path: &Path) -> Result<(), FsError> {
    make_dirs_writable(path)?;
    fs::remove_dir_all(path).map_err(|e| FsError::new("remove", path, e))
}

fn make_dirs_writable(path: &Path) -> Result<(), FsError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(FsError::new("read metadata of", path, e)),
    };
    if meta.is_dir() {
        state_dir::set_mode(path, 0o700)?;
        for entry in fs::read_dir(path).map_err(|e| FsError::new("list", path, e))? {
            let entry = entry.map_err(|e| FsError::new("list", path, e))?;
            make_dirs_writable(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecr() {
        for ok in ["frontend-repo", "backend-repo", "team/app", "a.b_c-d/e2"] {
            assert!(validate_repository(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Upper", "a//b", "-a", "a-", "a/", "/a", "a b", "a..b"] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_follow_docker() {
        for ok in ["latest", "0123abcdef01", "0123abcdef01-dirty", "v1.2_3"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"x".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }
}
