//! Errors of this crate.

use std::path::PathBuf;

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why a logger could not be built or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A runtime level change was rejected; the previous level stays.
    #[error("invalid log level: {reason}")]
    InvalidLevel {
        /// What is wrong with the directive.
        reason: String,
    },
    /// The log directory cannot be created or its file opened.
    #[error("cannot write logs to {dir}: {reason}")]
    Output {
        /// The configured directory.
        dir: PathBuf,
        /// What the filesystem said.
        reason: String,
    },
    /// This logger has no level control (it was not built by `new` or `init`).
    #[error("this logger does not own its subscriber, so its level cannot be changed")]
    NoLevelControl,
    /// `init` was called when a global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::Output { .. } => ErrorKind::InvalidConfig,
            Self::InvalidLevel { .. } => ErrorKind::InvalidArgument,
            Self::NoLevelControl => ErrorKind::Unsupported,
            Self::AlreadyInitialized => ErrorKind::Conflict,
        }
    }
}
