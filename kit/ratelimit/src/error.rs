//! Errors of this crate.

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why a rate-limit check or setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A dependency the config needs is missing from the options (the cache for `redis`, the
    /// coord provider for `coord_service`).
    #[error("missing option: {0}")]
    MissingOption(&'static str),
    /// More requests asked for at once than the rule's burst: they could never be allowed.
    #[error("{asked} requests at once exceed the burst of {burst} of rule {rule}")]
    ExceedsBurst {
        /// The rule.
        rule: String,
        /// Requests asked for.
        asked: u32,
        /// The rule's burst.
        burst: u32,
    },
    /// Reading rules from coord failed.
    #[error("coord: {0}")]
    Coord(#[from] gochat_coord::Error),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::MissingOption(_) => ErrorKind::InvalidConfig,
            Self::ExceedsBurst { .. } => ErrorKind::InvalidArgument,
            Self::Coord(e) => e.kind(),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
