//! Errors of this crate.

use gochat_core::{ConfigError, ErrorKind, KitError};

/// Why a messaging operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument was rejected (an empty topic name, zero partitions, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The topic exists already.
    #[error("topic {0} exists already")]
    TopicExists(String),
    /// A value could not be (de)serialised.
    #[error("cannot (de)serialise a message of {topic}: {reason}")]
    Serde {
        /// The topic.
        topic: String,
        /// What serde said.
        reason: String,
    },
    /// The producer's local queue is full: the broker is slower than the sender.
    #[error("the producer queue is full")]
    QueueFull,
    /// The broker cannot be reached.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker did not confirm in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The provider or subscription was closed.
    #[error("the mq provider is closed")]
    Closed,
    /// The broker answered something unexpected.
    #[error("broker error: {0}")]
    Backend(String),
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::InvalidArgument(_) | Self::Serde { .. } => ErrorKind::InvalidArgument,
            Self::UnknownTopic(_) => ErrorKind::NotFound,
            Self::TopicExists(_) => ErrorKind::Conflict,
            Self::QueueFull => ErrorKind::ResourceExhausted,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Closed => ErrorKind::Cancelled,
            Self::Backend(_) => ErrorKind::Internal,
        }
    }
}

impl Error {
    /// The same error once more, for answering every send of a batch that failed as one (the
    /// variants a batch fails with are kept; others become `Backend` with their text).
    pub(crate) fn again(&self) -> Self {
        match self {
            Self::Unavailable(s) => Self::Unavailable(s.clone()),
            Self::Timeout(s) => Self::Timeout(s.clone()),
            Self::UnknownTopic(s) => Self::UnknownTopic(s.clone()),
            Self::Closed => Self::Closed,
            other => Self::Backend(other.to_string()),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
