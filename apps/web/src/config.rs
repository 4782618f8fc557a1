//! Configuration from the environment, with the seed's defaults.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Where the web frontend listens and how it reaches the API.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`HOST`, default 0.0.0.0 as a container needs; berth sets
    /// 127.0.0.1 for local tasks).
    pub host: IpAddr,
    /// TCP port to listen on (`PORT`, 80 in the seed's task definition).
    pub port: u16,
    /// Base URL of the API as seen from this server (`API_URL`, the seed's
    /// `/ecs/frontend/API_URL` parameter), without `/api`: paths like `/api/files` are appended.
    pub api_url: String,
    /// Upload size limit shown to users (`MAX_FILE_SIZE`, same variable and default as the API,
    /// which is what enforces it).
    pub max_file_size: u64,
    /// MIME types shown as accepted (`ALLOWED_FILE_TYPES`, same variable and default as the API).
    pub allowed_types: Vec<String>,
    /// How long the file list at `/` waits for the API before rendering without it
    /// (`HOME_API_TIMEOUT_MS`): `/` is the target group's health check, which must answer
    /// within its own timeout (1 s locally) while the API is slow or down.
    pub home_api_timeout: Duration,
    /// Which requests get a log line (`ACCESS_LOG`: `all`, `errors` (default), `off`).
    pub access_log: AccessLog,
}

/// Which requests are logged: a line for every request fills disks and log bills.
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

/// The API's defaults (reference/file-analyzer-api.md).
/// Half the local health check's 1 s timeout, leaving the rest for rendering.
pub const DEFAULT_HOME_API_TIMEOUT: Duration = Duration::from_millis(500);
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_ALLOWED_TYPES: &str =
    "image/jpeg,image/png,image/gif,image/webp,application/pdf,text/plain";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

impl Config {
    /// Reads the configuration through `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let port = match lookup("PORT") {
            Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                expected: "a TCP port number",
                value,
            })?,
            None => 80,
        };
        let host = match lookup("HOST").filter(|v| !v.trim().is_empty()) {
            Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "HOST",
                expected: "an IP address such as 0.0.0.0 or 127.0.0.1",
                value,
            })?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let home_api_timeout = match lookup("HOME_API_TIMEOUT_MS") {
            Some(value) => value
                .trim()
                .parse()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .map(Duration::from_millis)
                .ok_or(ConfigError::Invalid {
                    name: "HOME_API_TIMEOUT_MS",
                    expected: "a number of milliseconds between 1 and 60000",
                    value,
                })?,
            None => DEFAULT_HOME_API_TIMEOUT,
        };
        let access_log = match lookup("ACCESS_LOG").as_deref().map(str::trim) {
            None | Some("errors") => AccessLog::Errors,
            Some("all") => AccessLog::All,
            Some("off") => AccessLog::Off,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "ACCESS_LOG",
                    expected: "one of all, errors, off",
                    value: other.to_owned(),
                });
            }
        };
        let max_file_size =
            match lookup("MAX_FILE_SIZE") {
                Some(value) => value.trim().parse().ok().filter(|size| *size > 0).ok_or(
                    ConfigError::Invalid {
                        name: "MAX_FILE_SIZE",
                        expected: "a positive number of bytes",
                        value,
                    },
                )?,
                None => DEFAULT_MAX_FILE_SIZE,
            };
        let api_url = lookup("API_URL").unwrap_or_else(|| "http://127.0.0.1:3001".to_owned());
        let api_url = api_url.trim().trim_end_matches('/');
        // The seed's parameter sometimes carries the `/api` suffix; paths already include it.
        let api_url = api_url.strip_suffix("/api").unwrap_or(api_url).to_owned();
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "API_URL",
                expected: "an http:// or https:// URL",
                value: api_url,
            });
        }
        let allowed_types = lookup("ALLOWED_FILE_TYPES")
            .unwrap_or_else(|| DEFAULT_ALLOWED_TYPES.to_owned())
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        Ok(Self {
            host,
            port,
            api_url,
            max_file_size,
            allowed_types,
            home_api_timeout,
            access_log,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A configuration for tests and embedding: the given API, defaults for the rest.
    pub fn with_api_url(api_url: impl Into<String>) -> Self {
        let api_url = api_url.into();
        let mut config = Self::from_lookup(|_| None).expect("defaults are valid");
        config.api_url = api_url.trim_end_matches('/').to_owned();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_follow_the_seed() {
        let config = config(&[]).unwrap();
        assert_eq!(config.port, 80);
        assert_eq!(config.host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(config.home_api_timeout, DEFAULT_HOME_API_TIMEOUT);
        assert_eq!(config.access_log, AccessLog::Errors);
        assert_eq!(config.max_file_size, 10 * 1024 * 1024);
        assert!(config.allowed_types.contains(&"application/pdf".to_owned()));
    }

    #[test]
    fn host_and_home_deadline_are_read() {
        let config = config(&[("HOST", "127.0.0.1"), ("HOME_API_TIMEOUT_MS", "50")]).unwrap();
        assert_eq!(config.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.home_api_timeout, Duration::from_millis(50));
    }

    #[test]
    fn api_url_loses_trailing_slash_and_api_suffix() {
        let config = config(&[("API_URL", "http://lb.internal/api/")]).unwrap();
        assert_eq!(config.api_url, "http://lb.internal");
    }

    #[test]
    fn bad_values_are_named() {
        let err = config(&[("PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");
        let err = config(&[("MAX_FILE_SIZE", "0")]).unwrap_err();
        assert!(err.to_string().contains("MAX_FILE_SIZE"), "{err}");
        let err = config(&[("ACCESS_LOG", "most")]).unwrap_err();
        assert!(err.to_string().contains("ACCESS_LOG"), "{err}");
        let err = config(&[("HOST", "localhost")]).unwrap_err();
        assert!(err.to_string().contains("HOST"), "{err}");
        let err = config(&[("HOME_API_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.to_string().contains("HOME_API_TIMEOUT_MS"), "{err}");
        let err = config(&[("API_URL", "lb.internal")]).unwrap_err();
        assert!(err.to_string().contains("API_URL"), "{err}");
    }
}
