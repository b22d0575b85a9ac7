//! Error kinds shared by every gochat-kit crate.
//!
//! Each crate has its own `Error` enum; each maps to an [`ErrorKind`] through [`KitError`], so
//! generic machinery (retries, circuit breakers, message consumers) can tell a transient
//! failure from a permanent one without knowing which crate raised it.
//!
//! ```
//! use gochat_core::{ConfigError, ErrorKind, KitError};
//!
//! #[derive(Debug, thiserror::Error)]
//! enum Error {
//!     #[error(transparent)]
//!     Config(#[from] ConfigError),
//!     #[error("server unreachable")]
//!     Unavailable,
//! }
//!
//! impl KitError for Error {
//!     fn kind(&self) -> ErrorKind {
//!         match self {
//!             Error::Config(_) => ErrorKind::InvalidConfig,
//!             Error::Unavailable => ErrorKind::Unavailable,
//!         }
//!     }
//! }
//!
//! assert!(Error::Unavailable.is_temporary());
//! let bad = Error::from(ConfigError::new("pool.max_size", "must be at least 1"));
//! assert!(!bad.is_temporary());
//! assert_eq!(bad.to_string(), "invalid config `pool.max_size`: must be at least 1");
//! ```

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration value is invalid; fix the config, retrying cannot help.
    InvalidConfig,
    /// An argument of the call is invalid (bad key, empty topic, oversized value).
    InvalidArgument,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already, or a condition (compare-and-set) failed.
    Conflict,
    /// The caller may not do this.
    PermissionDenied,
    /// The operation did not finish in time; it may or may not have taken effect.
    Timeout,
    /// The backend cannot be reached or refused the work for now.
    Unavailable,
    /// A limit was hit (rate limit, quota, queue full); retry later.
    ResourceExhausted,
    /// The work was cancelled (its context was cancelled or the provider closed).
    Cancelled,
    /// The backend does not support this operation.
    Unsupported,
    /// A bug or an unexpected answer; report it.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Self::Timeout | Self::Unavailable | Self::ResourceExhausted
        )
    }

    /// A short snake_case name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PermissionDenied => "permission_denied",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::ResourceExhausted => "resource_exhausted",
            Self::Cancelled => "cancelled",
            Self::Unsupported => "unsupported",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every gochat-kit crate's `Error`.
pub trait KitError: std::error::Error + Send + Sync + 'static {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;

    /// Whether retrying later can succeed; by default, [`ErrorKind::is_temporary`].
    fn is_temporary(&self) -> bool {
        self.kind().is_temporary()
    }
}

/// A configuration value was rejected; names the field (dotted path) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{field}`: {reason}")]
pub struct ConfigError {
    /// The dotted path of the field, e.g. `output.file.dir`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A rejection of `field` because of `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, its field inside `section` (`pool.max` in `db` → `db.pool.max`).
    #[must_use]
    pub fn within(mut self, section: &str) -> Self {
        self.field = if self.field.is_empty() {
            section.to_owned()
        } else {
            format!("{section}.{}", self.field)
        };
        self
    }
}

impl KitError for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidConfig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_kinds_are_temporary() {
        let temporary = [
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::ResourceExhausted,
        ];
        for kind in temporary {
            assert!(kind.is_temporary(), "{kind}");
        }
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::InvalidConfig,
            ErrorKind::Internal,
        ] {
            assert!(!kind.is_temporary(), "{kind}");
        }
    }
}
