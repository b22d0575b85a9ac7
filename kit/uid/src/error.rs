//! Errors of this crate.

use std::time::Duration;

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why no id could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The worker id could not be leased.
    #[error("cannot lease a worker id: {0}")]
    Lease(#[from] gochat_coord::Error),
    /// The clock is further behind the last id's time than `max_clock_backward` allows.
    #[error("the clock moved backwards by {behind:?}, more than the {allowed:?} allowed")]
    ClockMovedBackwards {
        /// How far behind.
        behind: Duration,
        /// The configured bound.
        allowed: Duration,
    },
    /// The leased worker id was lost (coord unreachable for longer than its TTL); another
    /// process may hold it now, so no more ids are made.
    #[error("the leased worker id {0} was lost; restart to lease a new one")]
    WorkerIdLost(u16),
    /// More than 2^41 ms since the epoch (the year 2093): the id space is used up.
    #[error("the timestamp no longer fits in 41 bits")]
    TimestampOverflow,
    /// A string is not a decimal Snowflake id.
    #[error("{0:?} is not a Snowflake id (a positive decimal 64-bit integer)")]
    Parse(String),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::Lease(e) => e.kind(),
            Self::ClockMovedBackwards { .. } | Self::WorkerIdLost(_) => ErrorKind::Unavailable,
            Self::TimestampOverflow => ErrorKind::Internal,
            Self::Parse(_) => ErrorKind::InvalidArgument,
        }
    }
}
