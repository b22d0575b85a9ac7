//! Errors of this crate.

use std::convert::Infallible;

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why an idempotent call failed; `E` is the operation's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E = Infallible> {
    /// The operation ran and failed; the key was released so it can be retried.
    #[error("the operation failed")]
    Operation(E),
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument was rejected.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] gochat_cache::Error),
    /// A cached result does not decode as the requested type, or a result does not encode.
    #[error("the result at {key} cannot be (de)serialised: {reason}")]
    Decode {
        /// The key.
        key: String,
        /// What serde said.
        reason: String,
    },
}

impl<E: std::fmt::Debug + Send + Sync + 'static> KitError for Error<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Operation(_) | Self::Decode { .. } => ErrorKind::Internal,
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Cache(e) => e.kind(),
        }
    }
}

impl<E> Error<E> {
    /// The operation's error, if that is what failed.
    pub fn operation(&self) -> Option<&E> {
        match self {
            Self::Operation(e) => Some(e),
            _ => None,
        }
    }
}
