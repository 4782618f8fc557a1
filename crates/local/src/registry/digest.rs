//! Content digests of artifacts: `sha256:<hex>`.
//!
//! A file's digest is the SHA-256 of its bytes (what `sha256sum` prints). A directory's is the
//! SHA-256 of a tar-like stream over its entries in byte order of their relative paths: for
//! each entry its kind, path, executable bit and content (or symlink target), every field
//! length-prefixed so no two different trees produce the same stream. Modification times and
//! owners are left out, so rebuilding the same bytes gives the same digest.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::state_dir::FsError;

/// The digest of a file or directory tree.
pub fn digest_path(path: &Path) -> Result<String, FsError> {
    let meta = fs::symlink_metadata(path).map_err(|e| FsError::new("read metadata of", path, e))?;
    let mut hasher = Sha256::new();
    if meta.is_dir() {
        hash_dir(&mut hasher, path, Path::new(""))?;
    } else {
        hash_file_content(&mut hasher, path)?;
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Whether `reference` has the shape of a digest (`sha256:` and 64 lowercase hex digits).
pub fn is_digest(reference: &str) -> bool {
    reference.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn hash_file_content(hasher: &mut Sha256, path: &Path) -> Result<(), FsError> {
    let mut file = File::open(path).map_err(|e| FsError::new("open", path, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FsError::new("read", path, e)),
        };
        hasher.update(&buf[..n]);
    }
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn hash_dir(hasher: &mut Sha256, dir: &Path, rel: &Path) -> Result<(), FsError> {
    let mut entries = fs::read_dir(dir)
        .map_err(|e| FsError::new("list", dir, e))?
        .map(|entry| entry.map_err(|e| FsError::new("list", dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let rel_path = rel.join(entry.file_name());
        let rel_bytes = rel_path.as_os_str().as_encoded_bytes();
        let meta =
            fs::symlink_metadata(&path).map_err(|e| FsError::new("read metadata of", &path, e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            field(hasher, b"dir");
            field(hasher, rel_bytes);
            hash_dir(hasher, &path, &rel_path)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| FsError::new("read link", &path, e))?;
            field(hasher, b"symlink");
            field(hasher, rel_bytes);
            field(hasher, target.as_os_str().as_encoded_bytes());
        } else if kind.is_file() {
            let executable = meta.permissions().mode() & 0o111 != 0;
            field(hasher, b"file");
            field(hasher, rel_bytes);
            field(hasher, if executable { b"x" } else { b"-" });
            hasher.update(meta.len().to_be_bytes());
            hash_file_content(hasher, &path)?;
        }
        // Sockets, fifos and devices are not part of an artifact.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_digest_is_sha256_of_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        fs::write(&file, b"abc").unwrap();
        assert_eq!(
            digest_path(&file).unwrap(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_digest(&digest_path(&file).unwrap()));
        assert!(!is_digest("sha256:xyz"));
        assert!(!is_digest("latest"));
    }

    #[test]
    fn dir_digest_depends_on_names_content_and_exec_bit_only() {
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str, content: &[u8]| {
            let dir = tmp.path().join(name);
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join("sub/f"), content).unwrap();
            fs::write(dir.join("g"), b"g").unwrap();
            dir
        };
        let a = make("a", b"1");
        let b = make("b", b"1");
        let c = make("c", b"2");
        assert_eq!(digest_path(&a).unwrap(), digest_path(&b).unwrap());
        assert_ne!(digest_path(&a).unwrap(), digest_path(&c).unwrap());
        fs::set_permissions(b.join("g"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(digest_path(&a).unwrap(), digest_path(&b).unwrap());
    }
}
