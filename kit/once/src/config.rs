//! Static configuration.

use std::time::Duration;

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How the idempotency Provider names and guards its keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Put before every key (after the cache's own prefix). Default: `once:`.
    pub key_prefix: String,
    /// The lease of a running operation: renewed while it runs, so only a crashed runner's
    /// key frees, after this long. Default: 30 s (production), 10 s (development).
    #[serde(with = "humantime_serde")]
    pub running_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// Defaults for `env`.
    pub fn for_env(env: Env) -> Self {
        Self {
            key_prefix: "once:".to_owned(),
            running_ttl: match env {
                Env::Development => Duration::from_secs(10),
                Env::Production => Duration::from_secs(30),
            },
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.running_ttl.is_zero() {
            return Err(ConfigError::new("running_ttl", "must be above zero"));
        }
        Ok(())
    }
}

gochat_core::impl_settings!(Config);
