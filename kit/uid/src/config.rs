//! Static configuration of the id generator.
//!
//! ```
//! use std::time::Duration;
//! use gochat_uid::{Config, Worker};
//! use gochat_core::Env;
//!
//! let config: Config = serde_json::from_str(
//!     r#"{"worker": {"leased": {"service": "im-logic"}}, "max_clock_backward": "50ms"}"#,
//! ).unwrap();
//! assert_eq!(config.worker, Worker::Leased { service: "im-logic".into() });
//! assert_eq!(config.max_clock_backward, Duration::from_millis(50));
//! assert_eq!(Config::for_env(Env::Development).worker, Worker::Static(0));
//! // A misspelt field inside a variant is an error, not silently dropped.
//! assert!(serde_json::from_str::<Config>(r#"{"worker": {"leased": {"servise": "x"}}}"#).is_err());
//! ```

use std::time::Duration;

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

use crate::MAX_WORKER;

/// How ids are generated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where the 10-bit worker id comes from. Default: `static: 0` in development,
    /// `leased: {service: "gochat"}` in production.
    pub worker: Worker,
    /// How far the clock may step back before generation fails. Within this bound ids keep
    /// coming from the last timestamp used (still unique and increasing); past it,
    /// `snowflake()` returns [`Error::ClockMovedBackwards`](crate::Error) until the clock
    /// catches up. Default: 1 s in development, 100 ms in production.
    #[serde(with = "humantime_serde")]
    pub max_clock_backward: Duration,
}

/// Where the worker id comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Worker {
    /// A fixed id below 1024: the operator guarantees it is unique.
    Static(u16),
    /// The lowest free id leased from coord (`instance_ids(service, 1024)`), unique while held;
    /// needs a coord provider in the options.
    Leased {
        /// Processes sharing this name share the id space.
        service: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// Development: worker 0, tolerant of clock steps. Production: leased worker id.
    pub fn for_env(env: Env) -> Self {
        match env {
            Env::Development => Self {
                worker: Worker::Static(0),
                max_clock_backward: Duration::from_secs(1),
            },
            Env::Production => Self {
                worker: Worker::Leased {
                    service: "gochat".to_owned(),
                },
                max_clock_backward: Duration::from_millis(100),
            },
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.worker {
            Worker::Static(id) if *id > MAX_WORKER => Err(ConfigError::new(
                "worker.static",
                format!("{id} does not fit in 10 bits (0..={MAX_WORKER})"),
            )),
            Worker::Leased { service } if service.is_empty() => Err(ConfigError::new(
                "worker.leased.service",
                "must not be empty",
            )),
            _ => Ok(()),
        }
    }
}

gochat_core::impl_settings!(Config);
