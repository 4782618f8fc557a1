//! Finding the system's PostgreSQL server binaries (Debian layout:
//! `/usr/lib/postgresql/<major>/bin`).

use std::fs;
use std::path::{Path, PathBuf};

use super::DatabaseError;

/// Where Debian and Ubuntu install PostgreSQL's server binaries, one directory per major version.
pub const POSTGRES_ROOT: &str = "/usr/lib/postgresql";

/// The bin directory of the PostgreSQL the stack asks for (`"15"`, `"15.4"`: the major version
/// decides), or of the only one installed when the stack does not say.
pub fn find_bin_dir(root: &Path, version: Option<&str>) -> Result<PathBuf, DatabaseError> {
    let installed = installed_versions(root);
    let wanted = version.map(major_version);
    let chosen = match (&wanted, installed.as_slice()) {
        (Some(major), _) => installed.iter().find(|v| *v == major).cloned(),
        (None, [only]) => Some(only.clone()),
        (None, _) => None,
    };
    chosen
        .map(|v| root.join(v).join("bin"))
        .ok_or_else(|| DatabaseError::PostgresNotInstalled {
            wanted,
            installed,
            root: root.to_path_buf(),
        })
}

/// `"15.4"` → `"15"`; `"9.6"` → `"9.6"` (before 10 the major version had two parts).
pub fn major_version(version: &str) -> String {
    let mut parts = version.trim().split('.');
    let first = parts.next().unwrap_or_default();
    match (first.parse::<u32>(), parts.next()) {
        (Ok(n), Some(second)) if n < 10 => format!("{first}.{second}"),
        _ => first.to_owned(),
    }
}

/// Major versions with an `initdb`, sorted.
fn installed_versions(root: &Path) -> Vec<String> {
    let mut versions: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("bin/initdb").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions() {
        assert_eq!(major_version("15"), "15");
        assert_eq!(major_version("15.4"), "15");
        assert_eq!(major_version("9.6.24"), "9.6");
    }

    #[test]
    fn picks_requested_or_only_version() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("15/bin")).unwrap();
        fs::write(root.join("15/bin/initdb"), "").unwrap();
        assert_eq!(find_bin_dir(root, None).unwrap(), root.join("15/bin"));
        assert_eq!(
            find_bin_dir(root, Some("15.4")).unwrap(),
            root.join("15/bin")
        );
        let err = find_bin_dir(root, Some("16")).unwrap_err().to_string();
        assert!(err.contains("16") && err.contains("15"), "{err}");
        fs::create_dir_all(root.join("16/bin")).unwrap();
        fs::write(root.join("16/bin/initdb"), "").unwrap();
        assert!(
            find_bin_dir(root, None).is_err(),
            "two installed, none asked for"
        );
    }
}
