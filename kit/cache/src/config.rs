//! Static configuration: which backend, how to reach it, and the key prefix.
//!
//! ```
//! use gochat_cache::{Backend, Config};
//! use gochat_core::Env;
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "key_prefix": "gochat:",
//!     "backend": {"redis": {"url": "redis://:s3cret@10.0.0.9:6379/0", "pool_size": 8,
//!                           "command_timeout": "500ms"}}
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert!(!format!("{config:?}").contains("s3cret"), "the password stays out of Debug");
//! assert_eq!(Config::for_env(Env::Development).key_prefix, "dev:");
//! ```

use std::{fmt, time::Duration};

use gochat_core::{ConfigError, Env, redact_url};
use serde::{Deserialize, Serialize};

/// How a cache Provider is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Put before every key, so environments and applications sharing a server never collide.
    /// Default: `dev:` (development), `gochat:` (production).
    pub key_prefix: String,
    /// The backend. Default: in-process in development, Redis in production.
    pub backend: Backend,
    /// Cache-aside: TTLs are spread by up to this fraction (0.1 = ±10 %), so keys written
    /// together do not expire together. Default: 0.1.
    pub ttl_jitter: f64,
    /// Cache-aside: how long "not found" is remembered, so a missing row is not looked up on
    /// every request. Zero disables negative caching. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
}

/// Where values live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// In-process (standalone mode).
    Memory(MemoryConfig),
    /// Redis: standalone, cluster or sentinel, by URL scheme.
    Redis(Box<RedisConfig>),
}

/// The in-process backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Providers in one process with the same name share one store. Default: `default`.
    pub name: String,
}

/// The Redis backend (fred). Every field is applied to the client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (or `rediss://` for TLS), `redis-cluster://host:port?node=host:port`,
    /// `redis-sentinel://host:port?sentinelServiceName=name`. Default: `redis://127.0.0.1:6379`.
    pub url: String,
    /// Connections in the pool. Default: 2 (development), 8 (production).
    pub pool_size: usize,
    /// Time to connect. Default: 2 s (development), 5 s (production).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Bound on every command. Default: 2 s (development), 1 s (production).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Reconnect delays: start at `reconnect_min_delay`, double up to `reconnect_max_delay`,
    /// forever. Default: 100 ms and 5 s.
    #[serde(with = "humantime_serde")]
    pub reconnect_min_delay: Duration,
    /// See `reconnect_min_delay`.
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self::named("default")
    }
}

impl MemoryConfig {
    /// A store shared by providers of this name in this process.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self::for_env(Env::Production)
    }
}

impl RedisConfig {
    /// Pool and timeouts for `env`, local server.
    pub fn for_env(env: Env) -> Self {
        let (pool_size, connect, command) = match env {
            Env::Development => (2, Duration::from_secs(2), Duration::from_secs(2)),
            Env::Production => (8, Duration::from_secs(5), Duration::from_secs(1)),
        };
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            pool_size,
            connect_timeout: connect,
            command_timeout: command,
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
        }
    }

    /// Redis at `url`, other fields for `env`.
    pub fn with_url(env: Env, url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::for_env(env)
        }
    }
}

impl Config {
    /// Development: in-process, prefix `dev:`. Production: Redis on localhost, prefix `gochat:`.
    pub fn for_env(env: Env) -> Self {
        match env {
            Env::Development => Self {
                key_prefix: "dev:".to_owned(),
                backend: Backend::Memory(MemoryConfig::default()),
                ttl_jitter: 0.1,
                negative_ttl: Duration::from_secs(30),
            },
            Env::Production => Self {
                key_prefix: "gochat:".to_owned(),
                backend: Backend::Redis(Box::new(RedisConfig::for_env(env))),
                ttl_jitter: 0.1,
                negative_ttl: Duration::from_secs(30),
            },
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=0.5).contains(&self.ttl_jitter) {
            return Err(ConfigError::new("ttl_jitter", "must be between 0 and 0.5"));
        }
        match &self.backend {
            Backend::Memory(memory) if memory.name.is_empty() => {
                Err(ConfigError::new("backend.memory.name", "must not be empty"))
            }
            Backend::Memory(_) => Ok(()),
            Backend::Redis(redis) => {
                const SCHEMES: [&str; 6] = [
                    "redis",
                    "rediss",
                    "redis-cluster",
                    "rediss-cluster",
                    "redis-sentinel",
                    "rediss-sentinel",
                ];
                let scheme = redis.url.split_once("://").map(|(scheme, _)| scheme);
                if !scheme.is_some_and(|s| SCHEMES.contains(&s)) {
                    return Err(ConfigError::new(
                        "backend.redis.url",
                        format!(
                            "{} must start with one of {SCHEMES:?} and ://",
                            redact_url(&redis.url)
                        ),
                    ));
                }
                fred::types::config::Config::from_url(&redis.url).map_err(|e| {
                    ConfigError::new(
                        "backend.redis.url",
                        format!("{}: {}", redact_url(&redis.url), e.details()),
                    )
                })?;
                if redis.pool_size == 0 {
                    return Err(ConfigError::new(
                        "backend.redis.pool_size",
                        "must be at least 1",
                    ));
                }
                for (field, value) in [
                    ("connect_timeout", redis.connect_timeout),
                    ("command_timeout", redis.command_timeout),
                    ("reconnect_min_delay", redis.reconnect_min_delay),
                ] {
                    if value.is_zero() {
                        return Err(ConfigError::new(
                            format!("backend.redis.{field}"),
                            "must be above zero",
                        ));
                    }
                }
                if redis.reconnect_max_delay < redis.reconnect_min_delay {
                    return Err(ConfigError::new(
                        "backend.redis.reconnect_max_delay",
                        "must not be below reconnect_min_delay",
                    ));
                }
                Ok(())
            }
        }
    }
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_checked() {
        assert_eq!(redact_url("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact_url("redis://h:1"), "redis://h:1");
        let mut config = Config::for_env(Env::Production);
        config.backend = Backend::Redis(Box::new(RedisConfig::with_url(
            Env::Production,
            "http://nope",
        )));
        assert_eq!(config.validate().unwrap_err().field, "backend.redis.url");
        config.ttl_jitter = 2.0;
        assert_eq!(config.validate().unwrap_err().field, "ttl_jitter");
    }
}
