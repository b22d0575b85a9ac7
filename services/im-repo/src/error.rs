//! What a repository call can fail with, and how it crosses gRPC.

use gochat_core::{ErrorKind, KitError};
use tonic::Status;

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique key is taken (a username, a member).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A request field is missing or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A rule of the data model refuses it (a full group).
    #[error("refused: {0}")]
    FailedPrecondition(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] gochat_db::Error),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] gochat_cache::Error),
    /// No id could be issued.
    #[error(transparent)]
    Uid(#[from] gochat_uid::Error),
}

impl From<gochat_db::sea_orm::DbErr> for Error {
    fn from(error: gochat_db::sea_orm::DbErr) -> Self {
        Self::Db(gochat_db::Error::from_db(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let text = error.to_string();
        match error {
            Error::NotFound(_) => Status::not_found(text),
            Error::AlreadyExists(_) => Status::already_exists(text),
            Error::InvalidArgument(_) => Status::invalid_argument(text),
            Error::FailedPrecondition(_) => Status::failed_precondition(text),
            Error::Db(e) if e.kind() == ErrorKind::Unavailable => Status::unavailable(text),
            Error::Cache(e) if e.kind() == ErrorKind::Unavailable => Status::unavailable(text),
            Error::Db(_) | Error::Cache(_) | Error::Uid(_) => Status::internal(text),
        }
    }
}

/// Whether a database error is a unique-key violation (the row exists already).
pub(crate) fn is_unique_violation(error: &gochat_db::sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(gochat_db::sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
