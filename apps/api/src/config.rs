//! Configuration from the environment, named exactly as the seed's task definition
//! provides it (`PORT`, `DB_*`, `FRONTEND_URL`) plus the original's `MAX_FILE_SIZE` and
//! `ALLOWED_FILE_TYPES`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::sniff::FileType;

/// The original's default upload limit: 10 MiB.
const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// Everything the process reads from its environment, validated.
#[derive(Clone)]
pub struct Config {
    /// Where to listen (`HOST`): 0.0.0.0 by default, as a container needs; berth sets
    /// 127.0.0.1 for local tasks.
    pub host: IpAddr,
    pub port: u16,
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    pub db_user: String,
    /// Never logged: [`Config`]'s `Debug` masks it.
    pub db_password: String,
    pub frontend_url: String,
    pub max_file_size: u64,
    pub allowed_file_types: Vec<FileType>,
    /// Which requests get an access-log line (`ACCESS_LOG`).
    pub access_log: AccessLog,
}

/// Which requests are logged (`ACCESS_LOG`): a line per request is ~220 bytes, 130 MB a
/// minute from one busy task, and CloudWatch charges per GB ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// Every request (`all`).
    All,
    /// Requests answered 4xx or 5xx (`errors`, the default).
    Errors,
    /// None (`off`).
    Off,
}

impl AccessLog {
    /// Whether a request answered `status` gets a line.
    pub fn logs(self, status: u16) -> bool {
        match self {
            AccessLog::All => true,
            AccessLog::Errors => status >= 400,
            AccessLog::Off => false,
        }
    }
}

/// A variable with a value the process cannot run with.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl Config {
    /// Read the configuration through `lookup` (the process environment in `main`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        Ok(Config {
            host: parse_host(get("HOST"))?,
            port: parse_port("PORT", get("PORT"), 3001)?,
            db_host: get("DB_HOST").unwrap_or_else(|| "localhost".into()),
            db_port: parse_port("DB_PORT", get("DB_PORT"), 5432)?,
            db_name: get("DB_NAME").unwrap_or_else(|| "fileanalyzer".into()),
            db_user: get("DB_USER").unwrap_or_else(|| "postgres".into()),
            db_password: lookup("DB_PASSWORD").unwrap_or_default(),
            frontend_url: parse_origin(get("FRONTEND_URL"))?,
            max_file_size: parse_size(get("MAX_FILE_SIZE"))?,
            allowed_file_types: parse_types(get("ALLOWED_FILE_TYPES"))?,
            access_log: parse_access_log(get("ACCESS_LOG"))?,
        })
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db_host", &self.db_host)
            .field("db_port", &self.db_port)
            .field("db_name", &self.db_name)
            .field("db_user", &self.db_user)
            .field("db_password", &"<redacted>")
            .field("frontend_url", &self.frontend_url)
            .field("max_file_size", &self.max_file_size)
            .field("access_log", &self.access_log)
            .field(
                "allowed_file_types",
                &self
                    .allowed_file_types
                    .iter()
                    .map(|t| t.mime())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn parse_port(
    variable: &'static str,
    value: Option<String>,
    default: u16,
) -> Result<u16, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(ConfigError {
            variable,
            reason: format!("`{value}` is not a TCP port (1-65535)"),
        }),
    }
}

fn parse_access_log(value: Option<String>) -> Result<AccessLog, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("errors") => Ok(AccessLog::Errors),
        Some("all") => Ok(AccessLog::All),
        Some("off") => Ok(AccessLog::Off),
        Some(other) => Err(ConfigError {
            variable: "ACCESS_LOG",
            reason: format!("`{other}` is not one of all, errors, off"),
        }),
    }
}

fn parse_host(value: Option<String>) -> Result<IpAddr, ConfigError> {
    let Some(value) = value else {
        return Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    };
    value.trim().parse().map_err(|_| ConfigError {
        variable: "HOST",
        reason: format!("`{value}` is not an IP address such as 0.0.0.0 or 127.0.0.1"),
    })
}

fn parse_origin(value: Option<String>) -> Result<String, ConfigError> {
    let Some(value) = value else {
        return Ok("http://localhost:3000".into());
    };
    let origin = value.trim().trim_end_matches('/').to_owned();
    let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
        && origin.len() > "https://".len()
        && http::HeaderValue::from_str(&origin).is_ok();
    if valid || origin == "*" {
        Ok(origin)
    } else {
        Err(ConfigError {
            variable: "FRONTEND_URL",
            reason: format!("`{value}` is not an http(s) origin such as http://example.com"),
        })
    }
}

fn parse_size(value: Option<String>) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAX_FILE_SIZE);
    };
    match value.trim().parse::<u64>() {
        // A gigabyte of body held in memory per upload is past what a task should accept.
        Ok(size) if (1..=1024 * 1024 * 1024).contains(&size) => Ok(size),
        _ => Err(ConfigError {
            variable: "MAX_FILE_SIZE",
            reason: format!("`{value}` is not a size in bytes between 1 and 1073741824"),
        }),
    }
}

fn parse_types(value: Option<String>) -> Result<Vec<FileType>, ConfigError> {
    let Some(value) = value else {
        return Ok(FileType::DEFAULT_ALLOWED.to_vec());
    };
    let mut types = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(file_type) = FileType::from_mime(item) else {
            let supported: Vec<_> = FileType::ALL.iter().map(|t| t.mime()).collect();
            return Err(ConfigError {
                variable: "ALLOWED_FILE_TYPES",
                reason: format!(
                    "`{item}` is not a type this API can recognise (supported: {})",
                    supported.join(", ")
                ),
            });
        };
        if !types.contains(&file_type) {
            types.push(file_type);
        }
    }
    if types.is_empty() {
        return Err(ConfigError {
            variable: "ALLOWED_FILE_TYPES",
            reason: "lists no type".into(),
        });
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_are_the_originals() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 3001);
        assert_eq!(c.host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.access_log, AccessLog::Errors);
        assert_eq!(c.db_port, 5432);
        assert_eq!(c.db_name, "fileanalyzer");
        assert_eq!(c.max_file_size, 10 * 1024 * 1024);
        assert_eq!(c.allowed_file_types.len(), 6);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("PORT", "http"),
            ("PORT", "0"),
            ("HOST", "localhost"),
            ("ACCESS_LOG", "some"),
            ("DB_PORT", "70000"),
            ("MAX_FILE_SIZE", "-1"),
            ("MAX_FILE_SIZE", "10MB"),
            ("ALLOWED_FILE_TYPES", "image/png,application/x-msdownload"),
            ("FRONTEND_URL", "not a url"),
        ] {
            let error = config(&[(var, value)]).unwrap_err();
            assert_eq!(error.variable, var);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = config(&[("DB_PASSWORD", "hunter2")]).unwrap();
        assert_eq!(c.db_password, "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn allowed_types_are_parsed_and_deduplicated() {
        let c = config(&[("ALLOWED_FILE_TYPES", "image/png, image/png,application/pdf")]).unwrap();
        assert_eq!(c.allowed_file_types, vec![FileType::Png, FileType::Pdf]);
    }
}
