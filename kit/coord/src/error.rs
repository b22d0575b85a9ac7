//! Errors of this crate.

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why a coord operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument was rejected (empty name, zero TTL, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend cannot be reached, or refused the request for now.
    #[error("coord backend unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("coord request timed out: {0}")]
    Timeout(String),
    /// The key holds no value.
    #[error("no value at {0}")]
    NotFound(String),
    /// A stored value could not be decoded as the requested type.
    #[error("the value at {key} is not a valid {type_name}: {reason}")]
    Decode {
        /// The key.
        key: String,
        /// The type asked for.
        type_name: &'static str,
        /// What serde said.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode the value for {key}: {reason}")]
    Encode {
        /// The key.
        key: String,
        /// What serde said.
        reason: String,
    },
    /// Every instance id below the maximum is held.
    #[error("no free instance id for {service} below {max}")]
    NoFreeId {
        /// The service.
        service: String,
        /// The exclusive maximum asked for.
        max: u32,
    },
    /// A lease (of a lock or an instance id) expired: what it protected is no longer held.
    #[error("the lease behind {0} was lost")]
    LeaseLost(String),
    /// The provider was closed.
    #[error("the coord provider is closed")]
    Closed,
    /// The backend answered something unexpected.
    #[error("coord backend error: {0}")]
    Backend(String),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::InvalidArgument(_) | Self::Encode { .. } => ErrorKind::InvalidArgument,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Decode { .. } | Self::Backend(_) => ErrorKind::Internal,
            Self::NoFreeId { .. } => ErrorKind::ResourceExhausted,
            Self::LeaseLost(_) => ErrorKind::Conflict,
            Self::Closed => ErrorKind::Cancelled,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
