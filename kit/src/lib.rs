#![doc = include_str!("../README.md")]
#![warn(clippy::unwrap_used)]

/// Env, Context, the loader, errors, health: what every component shares.
pub use gochat_core as core;
pub use gochat_core::{
    CONFIG_VAR, ConfigError, Context, Env, ErrorKind, Health, HealthReport, HealthStatus, KitError,
    Lifecycle, Loader, Secret, Settings, load,
};

/// Circuit breakers (`gochat-breaker`).
#[cfg(feature = "breaker")]
pub use gochat_breaker as breaker;
/// The cache (`gochat-cache`).
#[cfg(feature = "cache")]
pub use gochat_cache as cache;
/// Structured logging (`gochat-clog`).
#[cfg(feature = "clog")]
pub use gochat_clog as clog;
/// Registry, discovery, config centre, locks (`gochat-coord`).
#[cfg(feature = "coord")]
pub use gochat_coord as coord;
/// The database (`gochat-db`).
#[cfg(feature = "db")]
pub use gochat_db as db;
/// Metrics and traces (`gochat-metrics`).
#[cfg(feature = "metrics")]
pub use gochat_metrics as metrics;
/// The message bus (`gochat-mq`).
#[cfg(feature = "mq")]
pub use gochat_mq as mq;
/// Idempotency (`gochat-once`).
#[cfg(feature = "once")]
pub use gochat_once as once;
/// Rate limits (`gochat-ratelimit`).
#[cfg(feature = "ratelimit")]
pub use gochat_ratelimit as ratelimit;
/// Snowflake ids and UUIDv7 (`gochat-uid`).
#[cfg(feature = "uid")]
pub use gochat_uid as uid;

/// `use gochat_kit::prelude::*;`: the shared types, the loader, each enabled component's
/// module and its handle type.
pub mod prelude {
    pub use gochat_core::{
        ConfigError, Context, Env, Health, KitError, Lifecycle, Loader, Secret, Settings, load,
    };

    #[cfg(feature = "breaker")]
    pub use crate::breaker::{self, Breakers};
    #[cfg(feature = "cache")]
    pub use crate::cache::{self, Cache};
    #[cfg(feature = "clog")]
    pub use crate::clog::{self, Logger};
    #[cfg(feature = "coord")]
    pub use crate::coord::{self, Coord};
    #[cfg(feature = "db")]
    pub use crate::db::{self, Db};
    #[cfg(feature = "metrics")]
    pub use crate::metrics::{self, Metrics};
    #[cfg(feature = "mq")]
    pub use crate::mq::{self, Mq};
    #[cfg(feature = "once")]
    pub use crate::once::{self, Once};
    #[cfg(feature = "ratelimit")]
    pub use crate::ratelimit::{self, RateLimiter};
    #[cfg(feature = "uid")]
    pub use crate::uid::{self, Uid};
}
