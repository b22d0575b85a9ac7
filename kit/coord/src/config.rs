//! Static configuration: which backend, and how to reach it.
//!
//! ```
//! use gochat_coord::{Backend, Config};
//! use gochat_core::Env;
//!
//! // Development runs in-process; production talks to etcd.
//! assert!(matches!(Config::for_env(Env::Development).backend, Backend::Memory(_)));
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "env": "production",
//!     "backend": {"etcd": {"endpoints": ["http://10.0.0.5:2379"], "username": "im",
//!                          "password": "s3cret", "request_timeout": "3s"}}
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert!(!format!("{config:?}").contains("s3cret"), "secrets stay out of Debug");
//! ```

use std::{path::PathBuf, time::Duration};

use gochat_core::{ConfigError, Env, Secret};
use serde::{Deserialize, Serialize};

/// How a coord Provider is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// First segment of every key (`/{root}/{env}/…`). Default: `gochat`.
    pub root: String,
    /// Second segment of every key, so environments sharing one etcd never see each other.
    /// Default: the environment `for_env` was given (`development`).
    pub env: Env,
    /// The backend. Default: in-process in development, etcd in production.
    pub backend: Backend,
}

/// Which store holds the coordination state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// In-process (standalone mode): same semantics, nothing outside the process.
    Memory(MemoryConfig),
    /// etcd v3 (distributed mode).
    Etcd(Box<EtcdConfig>),
}

/// The in-process backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Providers in one process with the same name share one store — how the four services
    /// of the standalone `gochat` binary see each other. Default: `default`.
    pub name: String,
}

/// The etcd backend. Every field is applied to the etcd client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// Client URLs of the cluster members. Default: `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// User for etcd authentication. Default: none.
    pub username: Option<String>,
    /// Password of `username` (never printed). Default: none.
    pub password: Option<Secret>,
    /// TLS towards the cluster (use `https://` endpoints). Default: none.
    pub tls: Option<TlsConfig>,
    /// Time to establish a connection. Default: 2 s (development), 5 s (production).
    #[serde(with = "humantime_serde")]
    pub dial_timeout: Duration,
    /// Time for one request. Default: 3 s (development), 5 s (production).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// HTTP/2 keep-alive ping interval, to notice a dead connection. Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub keep_alive_interval: Duration,
    /// How long a keep-alive ping may go unanswered. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
}

/// TLS settings for etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file of the CA that signed the servers' certificates. Default: the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM client key, for mutual TLS (with `cert_file`).
    pub key_file: Option<PathBuf>,
    /// Server name to verify, when it differs from the endpoint host.
    pub domain: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
        }
    }
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self::for_env(Env::Production)
    }
}

impl MemoryConfig {
    /// A store shared by providers of this name in this process.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl EtcdConfig {
    /// Timeouts tuned to the environment, local endpoint.
    pub fn for_env(env: Env) -> Self {
        let (dial, request) = match env {
            Env::Development => (Duration::from_secs(2), Duration::from_secs(3)),
            Env::Production => (Duration::from_secs(5), Duration::from_secs(5)),
        };
        Self {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            username: None,
            password: None,
            tls: None,
            dial_timeout: dial,
            request_timeout: request,
            keep_alive_interval: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
        }
    }

    /// etcd at these endpoints (comma-separated), other fields for `env`.
    pub fn with_endpoints(env: Env, endpoints: &str) -> Self {
        Self {
            endpoints: endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            ..Self::for_env(env)
        }
    }
}

impl Config {
    /// Development: in-process. Production: etcd on `127.0.0.1:2379` (set `endpoints`).
    pub fn for_env(env: Env) -> Self {
        let backend = match env {
            Env::Development => Backend::Memory(MemoryConfig::default()),
            Env::Production => Backend::Etcd(Box::new(EtcdConfig::for_env(env))),
        };
        Self {
            root: "gochat".to_owned(),
            env,
            backend,
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_segment("root", &self.root)?;
        match &self.backend {
            Backend::Memory(memory) => {
                if memory.name.is_empty() {
                    return Err(ConfigError::new("backend.memory.name", "must not be empty"));
                }
            }
            Backend::Etcd(etcd) => validate_etcd(etcd)?,
        }
        Ok(())
    }
}

fn validate_etcd(etcd: &EtcdConfig) -> Result<(), ConfigError> {
    if etcd.endpoints.is_empty() {
        return Err(ConfigError::new(
            "backend.etcd.endpoints",
            "at least one endpoint is needed",
        ));
    }
    for endpoint in &etcd.endpoints {
        let ok = ["http://", "https://"].iter().any(|scheme| {
            endpoint
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.contains(':'))
        });
        if !ok {
            return Err(ConfigError::new(
                "backend.etcd.endpoints",
                format!("{endpoint:?} is not of the form http(s)://host:port"),
            ));
        }
    }
    if etcd.username.is_some() != etcd.password.is_some() {
        return Err(ConfigError::new(
            "backend.etcd.password",
            "username and password go together",
        ));
    }
    for (field, value) in [
        ("dial_timeout", etcd.dial_timeout),
        ("request_timeout", etcd.request_timeout),
        ("keep_alive_interval", etcd.keep_alive_interval),
        ("keep_alive_timeout", etcd.keep_alive_timeout),
    ] {
        if value.is_zero() {
            return Err(ConfigError::new(
                format!("backend.etcd.{field}"),
                "must be above zero",
            ));
        }
    }
    if let Some(tls) = &etcd.tls
        && tls.cert_file.is_some() != tls.key_file.is_some()
    {
        return Err(ConfigError::new(
            "backend.etcd.tls.key_file",
            "cert_file and key_file go together",
        ));
    }
    Ok(())
}

/// A key segment: `[A-Za-z0-9_.-]+`, so keys stay unambiguous.
pub(crate) fn check_segment(field: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(ConfigError::new(
            field,
            format!("{value:?} must be non-empty and use only letters, digits, `_`, `.` and `-`"),
        ));
    }
    Ok(())
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let mut config = Config::for_env(Env::Production);
        config.root = "a/b".to_owned();
        assert_eq!(config.validate().unwrap_err().field, "root");

        let mut config = Config::for_env(Env::Production);
        config.backend = Backend::Etcd(Box::new(EtcdConfig::with_endpoints(
            Env::Production,
            "127.0.0.1:2379",
        )));
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.etcd.endpoints"
        );

        let mut etcd = EtcdConfig::for_env(Env::Production);
        etcd.username = Some("u".to_owned());
        config.backend = Backend::Etcd(Box::new(etcd.clone()));
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.etcd.password"
        );

        etcd.username = None;
        etcd.request_timeout = Duration::ZERO;
        config.backend = Backend::Etcd(Box::new(etcd));
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.etcd.request_timeout"
        );
    }

    #[test]
    fn durations_read_as_human_text() {
        let etcd: EtcdConfig =
            serde_json::from_str(r#"{"dial_timeout": "250ms", "keep_alive_interval": "1m"}"#)
                .unwrap();
        assert_eq!(etcd.dial_timeout, Duration::from_millis(250));
        assert_eq!(etcd.keep_alive_interval, Duration::from_secs(60));
        assert_eq!(etcd.endpoints, ["http://127.0.0.1:2379"]);
    }
}
