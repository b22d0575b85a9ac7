//! Errors of this crate.

use gochat_core::{ConfigError, ErrorKind, KitError};
use sea_orm::{DbErr, RuntimeErr, TransactionError};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config was rejected; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument was rejected (an unknown sharded table, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The database cannot be reached (connect, acquire from the pool).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A statement failed (constraint, syntax, missing row, …); sea-orm's error is kept.
    #[error(transparent)]
    Query(DbErr),
    /// The provider was closed.
    #[error("the db provider is closed")]
    Closed,
}

impl Error {
    /// Classifies a sea-orm error: lost or unreachable connections are `Unavailable`.
    pub fn from_db(error: DbErr) -> Self {
        match &error {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Self::Unavailable(error.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if matches!(
                    **e,
                    sea_orm::sqlx::Error::Io(_)
                        | sea_orm::sqlx::Error::PoolTimedOut
                        | sea_orm::sqlx::Error::PoolClosed
                ) =>
            {
                Self::Unavailable(error.to_string())
            }
            _ => Self::Query(error),
        }
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        Self::from_db(error)
    }
}

/// A transaction's outcome when it did not commit: the database failed, or the body returned
/// its own error (and everything was rolled back).
#[derive(Debug, thiserror::Error)]
pub enum TxError<E> {
    /// Beginning or committing failed.
    #[error(transparent)]
    Db(Error),
    /// The body returned an error; the transaction was rolled back.
    #[error("transaction rolled back: {0}")]
    Rollback(E),
}

impl<E> From<TransactionError<E>> for TxError<E>
where
    E: std::error::Error,
{
    fn from(error: TransactionError<E>) -> Self {
        match error {
            TransactionError::Connection(e) => Self::Db(Error::from_db(e)),
            TransactionError::Transaction(e) => Self::Rollback(e),
        }
    }
}

impl KitError for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::InvalidConfig,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Migration(_) | Self::Query(_) => ErrorKind::Internal,
            Self::Closed => ErrorKind::Cancelled,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
