//! What a logic call can fail with, and how it maps to gRPC (and so to the gateway's codes).

use tonic::{Code, Status};

/// Why a logic call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field is missing or malformed (1001).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No valid credentials or token (1002).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Not a member, not an admin (1005).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many requests (1006); when to try again, if known.
    #[error("rate limited: {what}")]
    RateLimited {
        /// What was limited.
        what: String,
        /// When the request would be allowed.
        retry_after: Option<std::time::Duration>,
    },
    /// The rate limiter failed.
    #[error(transparent)]
    Limiter(#[from] gochat_ratelimit::Error),
    /// The repository refused or failed (its status, passed on).
    #[error("repo: {}", .0.message())]
    Repo(Status),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] gochat_cache::Error),
    /// The message bus failed.
    #[error(transparent)]
    Mq(#[from] gochat_mq::Error),
    /// No id could be issued.
    #[error(transparent)]
    Uid(#[from] gochat_uid::Error),
    /// Something that should not fail did (hashing, signing).
    #[error("internal: {0}")]
    Internal(String),
}

/// The gRPC metadata key a rate-limited call's `Status` carries the wait in, in milliseconds
/// (the gateway turns it into `Retry-After`).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::Repo(status)
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Repo(status) => status,
            Error::InvalidArgument(_) => Status::invalid_argument(error.to_string()),
            Error::Unauthorized(_) => Status::unauthenticated(error.to_string()),
            Error::Forbidden(_) => Status::permission_denied(error.to_string()),
            Error::RateLimited { retry_after, .. } => {
                let mut status = Status::resource_exhausted(error.to_string());
                if let Some(wait) = retry_after
                    && let Ok(value) = wait.as_millis().to_string().parse()
                {
                    status.metadata_mut().insert(RETRY_AFTER_MS, value);
                }
                status
            }
            Error::Limiter(_) => Status::unavailable(error.to_string()),
            Error::Cache(_) | Error::Mq(_) => Status::unavailable(error.to_string()),
            Error::Uid(_) | Error::Internal(_) => Status::internal(error.to_string()),
        }
    }
}

impl Error {
    /// The contract's error code: 1001 invalid, 1002 unauthorized, 1003 not found,
    /// 1004 internal, 1005 forbidden, 1006 rate limited, 1007 conflict.
    pub fn code(&self) -> i32 {
        match self {
            Self::InvalidArgument(_) => 1001,
            Self::Unauthorized(_) => 1002,
            Self::Forbidden(_) => 1005,
            Self::RateLimited { .. } => 1006,
            Self::Repo(status) => match status.code() {
                Code::InvalidArgument | Code::OutOfRange => 1001,
                Code::Unauthenticated => 1002,
                Code::NotFound => 1003,
                Code::PermissionDenied | Code::FailedPrecondition => 1005,
                Code::ResourceExhausted => 1006,
                Code::AlreadyExists => 1007,
                _ => 1004,
            },
            Self::Cache(_) | Self::Mq(_) | Self::Uid(_) | Self::Internal(_) | Self::Limiter(_) => {
                1004
            }
        }
    }

    /// Whether trying again later may succeed (a backend was unreachable).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Cache(_) | Self::Mq(_) | Self::Limiter(_) => true,
            Self::Repo(status) => {
                matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
            }
            _ => false,
        }
    }

    /// What a client may be told: the error itself when it is about the request (1001–1003,
    /// 1005–1007); a generic text in place of a backend's or the database's own words
    /// (1004), which name tables, hosts and queries.
    pub fn public_message(&self) -> String {
        if self.code() != 1004 {
            return self.to_string();
        }
        if self.is_temporary() {
            "a backend is unavailable; try again".to_owned()
        } else {
            "internal error".to_owned()
        }
    }

    /// Whether the repository said the thing does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Self::Repo(status) if status.code() == Code::NotFound)
    }
}
