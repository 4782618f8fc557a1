//! The parameter store: SSM Parameter Store's behaviour on one machine (ECS-SEMANTICS §7).
//!
//! `.berth/params/parameters.json` (mode 0600, replaced atomically) holds every parameter with
//! its version history; SecureString values in it are sealed with the key in
//! `.berth/params/key` (mode 0600, created on first use). Names are validated and versioned as
//! SSM does them.

mod crypto;
mod name;
mod password;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crypto::KeyError;
pub use name::{MAX_DEPTH, MAX_NAME_LEN, NameError, canonical_name, canonical_path};
pub use password::{PASSWORD_LEN, generate_password};
pub use secret::{REDACTED, SecretString};

use crypto::{Sealed, StoreKey};

use crate::state_dir::{self, FsError, StateDir};

/// Standard tier's value limit.
pub const MAX_VALUE_BYTES: usize = 4096;
/// SSM keeps the 100 most recent versions.
pub const MAX_VERSIONS: usize = 100;

const DATA_FILE: &str = "parameters.json";
const KEY_FILE: &str = "key";
const LOCK_FILE: &str = ".lock";

/// SSM's parameter types. (StringList is left out, as the stack file leaves it out: it has no
/// escaping.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    SecureString,
}

impl From<berth_spec::ParameterType> for ParameterType {
    fn from(kind: berth_spec::ParameterType) -> Self {
        match kind {
            berth_spec::ParameterType::String => ParameterType::String,
            berth_spec::ParameterType::SecureString => ParameterType::SecureString,
        }
    }
}

impl From<ParameterType> for berth_spec::ParameterType {
    fn from(kind: ParameterType) -> Self {
        match kind {
            ParameterType::String => berth_spec::ParameterType::String,
            ParameterType::SecureString => berth_spec::ParameterType::SecureString,
        }
    }
}

impl fmt::Display for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::String => "String",
            Self::SecureString => "SecureString",
        })
    }
}

impl std::str::FromStr for ParameterType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "String" => Ok(Self::String),
            "SecureString" => Ok(Self::SecureString),
            other => Err(format!(
                "unknown parameter type {other:?}: use String or SecureString"
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("parameter {name} already exists (ParameterAlreadyExists)")]
    AlreadyExists { name: String },
    #[error("parameter {name} not found (ParameterNotFound)")]
    NotFound { name: String },
    #[error("parameter {name} has no version {version} (ParameterVersionNotFound)")]
    VersionNotFound { name: String, version: u64 },
    #[error("invalid selector {selector:?}: use NAME or NAME:VERSION")]
    InvalidSelector { selector: String },
    #[error("invalid value for parameter {name}: {reason}")]
    InvalidValue { name: String, reason: String },
    #[error(
        "cannot decrypt parameter {name}: {} is not the key it was encrypted with, or the data was altered",
        key_path.display()
    )]
    Decrypt { name: String, key_path: PathBuf },
    #[error(
        "the parameter store holds SecureStrings but its key {} is missing",
        key_path.display()
    )]
    KeyMissing { key_path: PathBuf },
    #[error("corrupt parameter data file {}", path.display())]
    CorruptData {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// A parameter's value as returned by [`ParamStore::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterValue {
    /// A String's value.
    Plain(String),
    /// A SecureString's value, decrypted on request.
    Secret(SecretString),
    /// A SecureString's value, not decrypted (`get` without decryption).
    Redacted,
}

impl ParameterValue {
    /// The value for a consumer that needs the text (a task's environment).
    pub fn expose(&self) -> Option<&str> {
        match self {
            Self::Plain(value) => Some(value),
            Self::Secret(secret) => Some(secret.expose()),
            Self::Redacted => None,
        }
    }
}

/// Shows String values; SecureStrings always print as `********` (decrypted or not).
impl fmt::Display for ParameterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(value) => f.write_str(value),
            Self::Secret(_) | Self::Redacted => f.write_str(REDACTED),
        }
    }
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub kind: ParameterType,
    pub value: ParameterValue,
    pub version: u64,
    pub last_modified: DateTime<Utc>,
    pub description: Option<String>,
}

/// A parameter's metadata (`param list`): never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    pub version: u64,
    pub last_modified: DateTime<Utc>,
    pub description: Option<String>,
}

/// How to put a value.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Required to create; on overwrite `None` keeps the current type.
    pub kind: Option<ParameterType>,
    /// Without it, putting an existing name fails (ParameterAlreadyExists).
    pub overwrite: bool,
    /// `None` keeps the current description.
    pub description: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    parameters: BTreeMap<String, StoredParameter>,
}

impl Data {
    fn parameter(&self, name: &str) -> Result<&StoredParameter, ParamError> {
        self.parameters
            .get(name)
            .ok_or_else(|| ParamError::NotFound {
                name: name.to_owned(),
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredParameter {
    description: Option<String>,
    /// Oldest first.
    versions: Vec<StoredVersion>,
}

impl StoredParameter {
    fn has_sealed(&self) -> bool {
        self.versions
            .iter()
            .any(|v| matches!(v.value, StoredValue::Sealed(_)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredVersion {
    version: u64,
    #[serde(rename = "type")]
    kind: ParameterType,
    modified_at: DateTime<Utc>,
    value: StoredValue,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredValue {
    Plain(String),
    Sealed(Sealed),
}

/// The parameter store of one stack.
#[derive(Debug, Clone)]
pub struct ParamStore {
    dir: PathBuf,
}

impl ParamStore {
    /// Opens (creating its directory if needed) the store under `.berth/params`.
    pub fn open(state: &StateDir) -> Result<Self, ParamError> {
        Self::open_dir(state.params())
    }

    /// A store in an explicit directory.
    pub fn open_dir(dir: PathBuf) -> Result<Self, ParamError> {
        state_dir::create_private_dir(&dir)?;
        Ok(Self { dir })
    }

    pub fn data_path(&self) -> PathBuf {
        self.dir.join(DATA_FILE)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// PutParameter: creates version 1, or with `overwrite` adds a version. Returns the new
    /// version number.
    pub fn put(&self, name: &str, value: &str, options: &PutOptions) -> Result<u64, ParamError> {
        let name = canonical_name(name)?;
        validate_value(&name, value)?;
        let _lock = StoreLock::exclusive(&self.dir)?;
        let mut data = self.read()?;
        let existing = data.parameters.get(&name);
        if existing.is_some() && !options.overwrite {
            return Err(ParamError::AlreadyExists { name });
        }
        let kind = options
            .kind
            .or_else(|| existing.and_then(|p| p.versions.last()).map(|v| v.kind))
            .unwrap_or(ParameterType::String);
        let stored_value = match kind {
            ParameterType::String => StoredValue::Plain(value.to_owned()),
            ParameterType::SecureString => {
                // A new key would make the existing SecureStrings unreadable: only create
                // one for the first SecureString.
                let first_secret = !data.parameters.values().any(StoredParameter::has_sealed);
                StoredValue::Sealed(self.key(first_secret)?.seal(&name, value)?)
            }
        };
        let parameter = data
            .parameters
            .entry(name.clone())
            .or_insert_with(|| StoredParameter {
                description: None,
                versions: Vec::new(),
            });
        let version = parameter.versions.last().map_or(1, |v| v.version + 1);
        parameter.versions.push(StoredVersion {
            version,
            kind,
            modified_at: Utc::now(),
            value: stored_value,
        });
        if parameter.versions.len() > MAX_VERSIONS {
            let excess = parameter.versions.len() - MAX_VERSIONS;
            parameter.versions.drain(..excess);
        }
        if options.description.is_some() {
            parameter.description.clone_from(&options.description);
        }
        self.write(&data)?;
        tracing::info!(parameter = %name, version, %kind, "parameter put");
        Ok(version)
    }

    /// GetParameter: `selector` is `NAME` (latest) or `NAME:VERSION`. SecureStrings are
    /// decrypted only `with_decryption`; otherwise their value is [`ParameterValue::Redacted`].
    pub fn get(&self, selector: &str, with_decryption: bool) -> Result<Parameter, ParamError> {
        let (name, version) = parse_selector(selector)?;
        let _lock = StoreLock::shared(&self.dir)?;
        let data = self.read()?;
        let parameter = data.parameter(&name)?;
        let stored = match version {
            None => parameter.versions.last(),
            Some(v) => parameter.versions.iter().find(|s| s.version == v),
        }
        .ok_or(ParamError::VersionNotFound {
            name: name.clone(),
            version: version.unwrap_or(0),
        })?;
        self.materialise(&name, parameter, stored, with_decryption)
    }

    /// GetParameterHistory: every kept version, oldest first.
    pub fn history(&self, name: &str, with_decryption: bool) -> Result<Vec<Parameter>, ParamError> {
        let name = canonical_name(name)?;
        let _lock = StoreLock::shared(&self.dir)?;
        let data = self.read()?;
        let parameter = data.parameter(&name)?;
        parameter
            .versions
            .iter()
            .map(|stored| self.materialise(&name, parameter, stored, with_decryption))
            .collect()
    }

    /// DescribeParameters / GetParametersByPath: the parameters under `path` (all of them
    /// without a path); only the direct children of `path` unless `recursive`. Sorted by name.
    pub fn list(
        &self,
        path: Option<&str>,
        recursive: bool,
    ) -> Result<Vec<ParameterSummary>, ParamError> {
        let prefix = path.map(canonical_path).transpose()?;
        let _lock = StoreLock::shared(&self.dir)?;
        let data = self.read()?;
        Ok(data
            .parameters
            .iter()
            .filter(|(name, _)| match &prefix {
                None => true,
                Some(prefix) => {
                    // One-level names are stored without their slash but live under "/".
                    let full = if name.starts_with('/') {
                        (*name).clone()
                    } else {
                        format!("/{name}")
                    };
                    full.strip_prefix(prefix.as_str())
                        .is_some_and(|rest| recursive || !rest.contains('/'))
                }
            })
            .filter_map(|(name, parameter)| {
                let latest = parameter.versions.last()?;
                Some(ParameterSummary {
                    name: name.clone(),
                    kind: latest.kind,
                    version: latest.version,
                    last_modified: latest.modified_at,
                    description: parameter.description.clone(),
                })
            })
            .collect())
    }

    /// DeleteParameter: the parameter and all its versions.
    pub fn delete(&self, name: &str) -> Result<(), ParamError> {
        let name = canonical_name(name)?;
        let _lock = StoreLock::exclusive(&self.dir)?;
        let mut data = self.read()?;
        if data.parameters.remove(&name).is_none() {
            return Err(ParamError::NotFound { name });
        }
        self.write(&data)?;
        tracing::info!(parameter = %name, "parameter deleted");
        Ok(())
    }

    /// The current value of `name`, decrypted; `None` when the parameter does not exist.
    pub fn value(&self, name: &str) -> Result<Option<SecretString>, ParamError> {
        match self.get(name, true) {
            Ok(parameter) => Ok(Some(match parameter.value {
                ParameterValue::Plain(value) => SecretString::new(value),
                ParameterValue::Secret(secret) => secret,
                ParameterValue::Redacted => {
                    return Err(ParamError::KeyMissing {
                        key_path: self.key_path(),
                    });
                }
            })),
            Err(ParamError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The SecureString `name`, generated (a strong random password) and stored when absent;
    /// never regenerated once present, so the database and the tasks keep agreeing.
    pub fn get_or_generate_password(
        &self,
        name: &str,
        description: &str,
    ) -> Result<SecretString, ParamError> {
        if let Some(existing) = self.value(name)? {
            return Ok(existing);
        }
        let password = generate_password()?;
        let options = PutOptions {
            kind: Some(ParameterType::SecureString),
            overwrite: false,
            description: Some(description.to_owned()),
        };
        match self.put(name, password.expose(), &options) {
            Ok(_) => Ok(password),
            // Somebody else generated it between our read and our write: theirs wins.
            Err(ParamError::AlreadyExists { .. }) => {
                self.value(name)?.ok_or_else(|| ParamError::NotFound {
                    name: name.to_owned(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Puts `value` only when it differs from the current one (or the type changes), so
    /// re-applying a stack does not add versions. Returns the version now current.
    pub fn put_if_changed(
        &self,
        name: &str,
        value: &str,
        kind: ParameterType,
        description: Option<&str>,
    ) -> Result<u64, ParamError> {
        match self.get(name, true) {
            Ok(current) if current.kind == kind && current.value.expose() == Some(value) => {
                Ok(current.version)
            }
            Ok(_) | Err(ParamError::NotFound { .. }) => self.put(
                name,
                value,
                &PutOptions {
                    kind: Some(kind),
                    overwrite: true,
                    description: description.map(str::to_owned),
                },
            ),
            Err(e) => Err(e),
        }
    }

    /// The values of a task's `secrets` (variable → parameter name) as they are now (S7.9: a
    /// task reads the current value at its own start). A missing parameter fails like ECS:
    /// the error names it.
    pub fn resolve_secrets(
        &self,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, SecretString)>, ParamError> {
        secrets
            .iter()
            .map(|(variable, parameter)| {
                let value = self.value(parameter)?.ok_or_else(|| ParamError::NotFound {
                    name: parameter.clone(),
                })?;
                Ok((variable.clone(), value))
            })
            .collect()
    }

    fn materialise(
        &self,
        name: &str,
        parameter: &StoredParameter,
        stored: &StoredVersion,
        with_decryption: bool,
    ) -> Result<Parameter, ParamError> {
        let value = match &stored.value {
            StoredValue::Plain(value) => ParameterValue::Plain(value.clone()),
            StoredValue::Sealed(_) if !with_decryption => ParameterValue::Redacted,
            StoredValue::Sealed(sealed) => {
                let key = self.key(false)?;
                let plain = key.open(name, sealed).map_err(|_| ParamError::Decrypt {
                    name: name.to_owned(),
                    key_path: self.key_path(),
                })?;
                ParameterValue::Secret(SecretString::new(plain))
            }
        };
        Ok(Parameter {
            name: name.to_owned(),
            kind: stored.kind,
            value,
            version: stored.version,
            last_modified: stored.modified_at,
            description: parameter.description.clone(),
        })
    }

    fn key(&self, create: bool) -> Result<StoreKey, ParamError> {
        let path = self.key_path();
        if !create && !path.exists() {
            return Err(ParamError::KeyMissing { key_path: path });
        }
        Ok(StoreKey::load_or_create(&path)?)
    }

    fn read(&self) -> Result<Data, ParamError> {
        let path = self.data_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| ParamError::CorruptData { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Data::default()),
            Err(e) => Err(FsError::new("read", path, e).into()),
        }
    }

    fn write(&self, data: &Data) -> Result<(), ParamError> {
        let path = self.data_path();
        let bytes = serde_json::to_vec_pretty(data).map_err(|source| ParamError::CorruptData {
            path: path.clone(),
            source,
        })?;
        state_dir::write_private_file_atomic(&path, &bytes)?;
        Ok(())
    }
}

fn validate_value(name: &str, value: &str) -> Result<(), ParamError> {
    let reason = if value.is_empty() {
        "the value is empty (at least 1 character)".to_owned()
    } else if value.len() > MAX_VALUE_BYTES {
        format!(
            "the value is {} bytes; the Standard tier allows {MAX_VALUE_BYTES}",
            value.len()
        )
    } else if value.contains("{{ssm:") {
        "values cannot contain {{ssm:...}} references".to_owned()
    } else {
        return Ok(());
    };
    Err(ParamError::InvalidValue {
        name: name.to_owned(),
        reason,
    })
}

/// `NAME` or `NAME:VERSION` (labels are not supported).
fn parse_selector(selector: &str) -> Result<(String, Option<u64>), ParamError> {
    match selector.rsplit_once(':') {
        None => Ok((canonical_name(selector)?, None)),
        Some((name, version)) => {
            let version = version
                .parse::<u64>()
                .map_err(|_| ParamError::InvalidSelector {
                    selector: selector.to_owned(),
                })?;
            Ok((canonical_name(name)?, Some(version)))
        }
    }
}

/// An advisory lock on the store, so concurrent `berth param put`s never lose a write.
struct StoreLock {
    file: fs::File,
}

impl StoreLock {
    fn exclusive(dir: &Path) -> Result<Self, FsError> {
        let path = dir.join(LOCK_FILE);
        let file = state_dir::open_private_file(&path)?;
        file.lock().map_err(|e| FsError::new("lock", &path, e))?;
        Ok(Self { file })
    }

    fn shared(dir: &Path) -> Result<Self, FsError> {
        let path = dir.join(LOCK_FILE);
        let file = state_dir::open_private_file(&path)?;
        file.lock_shared()
            .map_err(|e| FsError::new("lock", &path, e))?;
        Ok(Self { file })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}
