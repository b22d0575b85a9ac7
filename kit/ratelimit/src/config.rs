//! Static configuration: the backend, the rules, what an unknown rule gets.
//!
//! ```
//! use gochat_ratelimit::{Config, Rule};
//! use std::time::Duration;
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "backend": "redis",
//!     "instances": 4,
//!     "rules": {"send_message": {"rate": 10, "period": "1s", "burst": 20}},
//!     "unknown_rule": {"default": {"rate": 100, "period": "1m", "burst": 100}},
//!     "coord_service": "im-gateway"
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert_eq!(config.rules["send_message"], Rule::new(10, Duration::from_secs(1), 20));
//! ```

use std::{collections::BTreeMap, time::Duration};

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How a rate limiter is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `local` (this process) or `redis` (shared by every instance, through the cache
    /// provider given in the options). Default: local (development), redis (production).
    pub backend: BackendKind,
    /// Rules by name.
    pub rules: BTreeMap<String, Rule>,
    /// What a check against a rule nobody defined gets. Default: deny.
    pub unknown_rule: UnknownRule,
    /// Instances sharing a Redis limit. While Redis is unreachable each instance limits
    /// locally at `rate / instances`, its share. Default: 1.
    pub instances: u32,
    /// How long after a Redis failure the limiter stays local before trying Redis again.
    /// Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub redis_retry: Duration,
    /// Also read rules from coord: `coord.config().scope(coord_service, "ratelimit")`, one
    /// value per rule name, hot-reloaded (they override `rules`; deleting one restores the
    /// configured rule). Needs a coord provider in the options. Default: none.
    pub coord_service: Option<String>,
}

/// Where buckets live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// In this process (governor).
    Local,
    /// In Redis: one Lua script per decision, shared by every instance.
    Redis,
}

/// `rate` requests per `period`, with bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Rule {
    /// Requests per period, sustained.
    pub rate: u32,
    /// The period of `rate`.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    /// Requests allowed at once (the bucket's size). At least 1.
    pub burst: u32,
}

/// What a check against an undefined rule gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UnknownRule {
    /// Denied (and logged): a typo in a rule name must not lift a limit.
    Deny,
    /// Limited by this rule.
    Default(Rule),
}

impl Rule {
    /// `rate` per `period`, bursts of `burst`.
    pub const fn new(rate: u32, period: Duration, burst: u32) -> Self {
        Self {
            rate,
            period,
            burst,
        }
    }

    /// The time one request's token takes to come back: `period / rate`.
    pub fn interval(&self) -> Duration {
        self.period / self.rate.max(1)
    }

    /// Checks the rule, naming fields under `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the bad field.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.rate == 0 {
            return Err(ConfigError::new(
                format!("{path}.rate"),
                "must be at least 1",
            ));
        }
        if self.burst == 0 {
            return Err(ConfigError::new(
                format!("{path}.burst"),
                "must be at least 1",
            ));
        }
        if self.interval() < Duration::from_micros(1) {
            return Err(ConfigError::new(
                format!("{path}.period"),
                "period / rate must be at least 1 µs",
            ));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// Development: local buckets. Production: Redis. Unknown rules denied; no rules yet.
    pub fn for_env(env: Env) -> Self {
        Self {
            backend: match env {
                Env::Development => BackendKind::Local,
                Env::Production => BackendKind::Redis,
            },
            rules: BTreeMap::new(),
            unknown_rule: UnknownRule::Deny,
            instances: 1,
            redis_retry: Duration::from_secs(1),
            coord_service: None,
        }
    }

    /// Adds (or replaces) a rule.
    #[must_use]
    pub fn rule(mut self, name: impl Into<String>, rule: Rule) -> Self {
        self.rules.insert(name.into(), rule);
        self
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, rule) in &self.rules {
            rule.validate(&format!("rules.{name}"))?;
        }
        if let UnknownRule::Default(rule) = &self.unknown_rule {
            rule.validate("unknown_rule.default")?;
        }
        if self.instances == 0 {
            return Err(ConfigError::new("instances", "must be at least 1"));
        }
        if self.redis_retry.is_zero() {
            return Err(ConfigError::new("redis_retry", "must be above zero"));
        }
        if self.coord_service.as_deref() == Some("") {
            return Err(ConfigError::new("coord_service", "must not be empty"));
        }
        Ok(())
    }
}

gochat_core::impl_settings!(Config);
