//! Errors of this crate.

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument was rejected.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The key holds a value of another type (a hash where a string was expected, …).
    #[error("{key} holds a value of another type")]
    WrongType {
        /// The key, with the prefix.
        key: String,
    },
    /// The value is not a number where one was needed (INCR on text, …).
    #[error("the value at {key} is not an integer")]
    NotAnInteger {
        /// The key, with the prefix.
        key: String,
    },
    /// A value could not be (de)serialised.
    #[error("cannot (de)serialise the value at {key}: {reason}")]
    Serde {
        /// The key, with the prefix.
        key: String,
        /// What serde said.
        reason: String,
    },
    /// The server cannot be reached.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The server did not answer in time.
    #[error("cache timed out: {0}")]
    Timeout(String),
    /// The backend cannot do this (Lua scripts on the in-process backend).
    #[error("not supported by the {backend} backend: {what}")]
    Unsupported {
        /// `memory` or `redis`.
        backend: &'static str,
        /// The operation.
        what: &'static str,
    },
    /// A loader of `get_or_load` failed.
    #[error("loading {key} failed: {reason}")]
    Load {
        /// The key, with the prefix.
        key: String,
        /// The loader's error.
        reason: String,
    },
    /// The provider was closed.
    #[error("the cache provider is closed")]
    Closed,
    /// The server answered something unexpected.
    #[error("cache backend error: {0}")]
    Backend(String),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::InvalidArgument(_)
            | Self::WrongType { .. }
            | Self::NotAnInteger { .. }
            | Self::Serde { .. } => ErrorKind::InvalidArgument,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Unsupported { .. } => ErrorKind::Unsupported,
            Self::Load { .. } | Self::Backend(_) => ErrorKind::Internal,
            Self::Closed => ErrorKind::Cancelled,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
