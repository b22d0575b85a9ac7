//! Static configuration: the policy of each resource, and where hot-reloaded ones come from.
//!
//! ```
//! use gochat_breaker::{Config, Policy};
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "default": {"classic": {"failures": 5, "open_timeout": "10s", "half_open_successes": 2}},
//!     "resources": {"im-repo": {"sre": {"k": 2.0, "window": "10s"}}},
//!     "coord_service": "im-logic"
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert!(matches!(config.resources["im-repo"], Policy::Sre { .. }));
//! ```

use std::{collections::BTreeMap, time::Duration};

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How the breakers are built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The policy of a resource not listed in `resources`. Default: classic, 5 failures,
    /// 10 s open, 2 successes to close.
    pub default: Policy,
    /// Policies by resource name.
    pub resources: BTreeMap<String, Policy>,
    /// Also read policies from coord: `coord.config().scope(coord_service, "breaker")`, one
    /// value per resource, hot-reloaded (deleting one restores the configured policy). Needs a
    /// coord provider in the options. Default: none.
    pub coord_service: Option<String>,
}

/// When a breaker rejects calls.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Policy {
    /// `failures` consecutive failures open the breaker; after `open_timeout` it lets
    /// `half_open_successes` trial calls through, which close it if they all succeed (any
    /// failure opens it again).
    Classic {
        /// Consecutive failures that open it.
        failures: u32,
        /// How long it stays open before trial calls.
        #[serde(with = "humantime_serde")]
        open_timeout: Duration,
        /// Trial successes that close it.
        half_open_successes: u32,
    },
    /// Google SRE adaptive throttling: each call is rejected with probability
    /// `max(0, (requests − k·accepts) / (requests + 1))` over the last `window`, where
    /// `requests` counts every call (rejected ones too) and `accepts` the successful ones.
    Sre {
        /// The multiplier: 2 lets through twice as many calls as succeed; lower is more
        /// aggressive.
        k: f64,
        /// The sliding window the counts cover.
        #[serde(with = "humantime_serde")]
        window: Duration,
    },
}

impl Policy {
    /// Checks the policy, naming fields under `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the bad field.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        match *self {
            Self::Classic {
                failures,
                open_timeout,
                half_open_successes,
            } => {
                if failures == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.classic.failures"),
                        "must be at least 1",
                    ));
                }
                if open_timeout.is_zero() {
                    return Err(ConfigError::new(
                        format!("{path}.classic.open_timeout"),
                        "must be above zero",
                    ));
                }
                if half_open_successes == 0 {
                    return Err(ConfigError::new(
                        format!("{path}.classic.half_open_successes"),
                        "must be at least 1",
                    ));
                }
            }
            Self::Sre { k, window } => {
                if !(k.is_finite() && k >= 1.0) {
                    return Err(ConfigError::new(
                        format!("{path}.sre.k"),
                        "must be at least 1",
                    ));
                }
                if window < Duration::from_millis(10) {
                    return Err(ConfigError::new(
                        format!("{path}.sre.window"),
                        "must be at least 10 ms",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::Classic {
            failures: 5,
            open_timeout: Duration::from_secs(10),
            half_open_successes: 2,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// The classic default policy in every environment; no per-resource policies.
    pub fn for_env(_env: Env) -> Self {
        Self {
            default: Policy::default(),
            resources: BTreeMap::new(),
            coord_service: None,
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.default.validate("default")?;
        for (name, policy) in &self.resources {
            policy.validate(&format!("resources.{name}"))?;
        }
        if self.coord_service.as_deref() == Some("") {
            return Err(ConfigError::new("coord_service", "must not be empty"));
        }
        Ok(())
    }
}

gochat_core::impl_settings!(Config);
