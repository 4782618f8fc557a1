//! The `.berth/` directory next to the stack file, and the file-permission helpers every
//! store uses.
//!
//! Layout:
//! ```text
//! .berth/            0700 (0711 while a local PostgreSQL runs as another user)
//!   registry/        image snapshots and their index
//!   params/          parameter store (data file and key, 0600)
//!   logs/            log groups and streams
//!   db/              PostgreSQL data, socket and port
//!   run/             the running berth's control socket and pid files
//! ```

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory berth creates under `.berth/`: only its owner may enter.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of every file that may hold a secret (parameter data, the key).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// A filesystem operation that failed, with the path it was about.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct FsError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl FsError {
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The `.berth/` state directory of one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory that belongs to `stack_file`: `.berth/` beside it.
    pub fn for_stack_file(stack_file: &Path) -> Self {
        let dir = match stack_file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::at(dir.join(".berth"))
    }

    /// A state directory at an explicit path (tests, tools).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn registry(&self) -> PathBuf {
        self.root.join("registry")
    }

    pub fn params(&self) -> PathBuf {
        self.root.join("params")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Creates `.berth/` and every subdirectory (mode 0700) when absent.
    pub fn ensure(&self) -> Result<(), FsError> {
        create_private_dir(&self.root)?;
        for dir in [
            self.registry(),
            self.params(),
            self.logs(),
            self.db(),
            self.run(),
        ] {
            create_private_dir(&dir)?;
        }
        Ok(())
    }
}

/// Creates `path` and its missing parents; the directories this call creates get mode 0700.
/// An existing directory keeps its mode (the database directory is widened on purpose).
pub fn create_private_dir(path: &Path) -> Result<(), FsError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
        .map_err(|e| FsError::new("create directory", path, e))
}

/// Sets the permission bits of `path` exactly (umask does not apply to chmod).
pub fn set_mode(path: &Path, mode: u32) -> Result<(), FsError> {
    fs::set_permissions(path, Permissions::from_mode(mode))
        .map_err(|e| FsError::new("set permissions of", path, e))
}

/// Permission bits of `path` (the low 12 bits of st_mode).
pub fn mode_of(path: &Path) -> Result<u32, FsError> {
    let meta = fs::metadata(path).map_err(|e| FsError::new("read metadata of", path, e))?;
    Ok(meta.permissions().mode() & 0o7777)
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the same
/// directory, created 0600 so the content is never readable by others even for an instant,
/// synced, then renamed over the target.
pub fn write_private_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    write_file_atomic(path, bytes, PRIVATE_FILE_MODE)
}

/// Writes `bytes` to `path` atomically (temp file + fsync + rename) with the given mode.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{file_name}.tmp.{}.{}",
        std::process::id(),
        random_suffix()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| FsError::new("create", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| FsError::new("write", &tmp, e))?;
        // The mode given to open() is filtered by the umask; make it exact.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| FsError::new("set permissions of", &tmp, e))?;
        file.sync_all().map_err(|e| FsError::new("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| FsError::new("replace", path, e))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens (creating if needed, mode 0600) a file for reading and writing, never truncating.
pub fn open_private_file(path: &Path) -> Result<File, FsError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .map_err(|e| FsError::new("open", path, e))
}

/// A short random suffix for temporary names, so concurrent writers never collide.
fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        // Uniqueness also comes from the pid and create_new; the time is good enough here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return format!("{nanos:x}");
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_beside_the_stack_file() {
        let state = StateDir::for_stack_file(Path::new("/srv/app/berth.toml"));
        assert_eq!(state.root(), Path::new("/srv/app/.berth"));
        assert_eq!(state.params(), Path::new("/srv/app/.berth/params"));
        let bare = StateDir::for_stack_file(Path::new("berth.toml"));
        assert_eq!(bare.root(), Path::new("./.berth"));
    }

    #[test]
    fn ensure_creates_private_dirs_and_atomic_writes_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join(".berth"));
        state.ensure().unwrap();
        for dir in [state.root().to_path_buf(), state.registry(), state.run()] {
            assert_eq!(mode_of(&dir).unwrap(), 0o700, "{}", dir.display());
        }
        let file = state.params().join("data.json");
        write_private_file_atomic(&file, b"one").unwrap();
        write_private_file_atomic(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        assert_eq!(mode_of(&file).unwrap(), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(state.params()).unwrap().count(), 1);
    }
}
