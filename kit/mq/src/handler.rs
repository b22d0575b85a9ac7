//! What a consumer runs per message — any `async fn(Received) -> Result<(), E>` — or per batch
//! of a partition's messages — any `async fn(Vec<Received>) -> Result<(), E>`.

use std::{error::Error as StdError, fmt, future::Future};

use gochat_core::BoxFuture;

use crate::message::Received;

/// A handler's error: anything that converts into a boxed error (`String`, `&str`, any
/// `std::error::Error`).
pub type HandlerError = Box<dyn StdError + Send + Sync>;

/// Handles one message. Implemented for every `Fn(Received) -> impl Future<Output =
/// Result<(), E>>` with `E: Into<HandlerError>`.
///
/// `Ok` commits the message. `Err` retries it with backoff; when retries run out, or at once
/// for a [`Permanent`] error, it goes to the dead-letter topic and is then committed. A panic
/// counts as an error.
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`.
    fn handle(&self, message: Received) -> BoxFuture<'static, Result<(), HandlerError>>;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<HandlerError>,
{
    fn handle(&self, message: Received) -> BoxFuture<'static, Result<(), HandlerError>> {
        let handled = self(message);
        Box::pin(async move { handled.await.map_err(Into::into) })
    }
}

/// Handles a batch: messages of one partition, in offset order, as many as were waiting when
/// the previous batch of that partition finished (at most `max_batch`). Implemented for every
/// `Fn(Vec<Received>) -> impl Future<Output = Result<(), E>>` with `E: Into<HandlerError>`.
///
/// `Ok` commits the whole batch. `Err` retries the whole batch with backoff; when retries run
/// out, or at once for a [`Permanent`] error, each of its messages is handled again alone (a
/// batch of one, with its own retries), so that one bad message is dead-lettered and the
/// others are not. A handler must therefore take a message it has seen again — as it must
/// anyway under at-least-once delivery.
///
/// ```
/// use gochat_mq::{HandlerError, Received};
///
/// async fn handle(batch: Vec<Received>) -> Result<(), HandlerError> {
///     // One round trip for the batch (one insert, one multi-get) instead of one per message.
///     let _values: Vec<&[u8]> = batch.iter().map(|m| m.value.as_ref()).collect();
///     Ok(())
/// }
/// ```
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles `batch` (never empty).
    fn handle(&self, batch: Vec<Received>) -> BoxFuture<'static, Result<(), HandlerError>>;
}

impl<F, Fut, E> BatchHandler for F
where
    F: Fn(Vec<Received>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<HandlerError>,
{
    fn handle(&self, batch: Vec<Received>) -> BoxFuture<'static, Result<(), HandlerError>> {
        let handled = self(batch);
        Box::pin(async move { handled.await.map_err(Into::into) })
    }
}

/// A failure retrying cannot fix (a malformed payload): the message is dead-lettered at once.
///
/// ```
/// use gochat_mq::{HandlerError, Permanent, Received};
///
/// async fn handle(message: Received) -> Result<(), HandlerError> {
///     let _n: u64 = message.json().map_err(|e| Permanent(e.into()))?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Permanent(pub HandlerError);

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (permanent)", self.0)
    }
}

impl StdError for Permanent {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// Headers a dead letter carries besides the original message's own.
pub mod dead_letter {
    /// The handler's last error (at most 4 KiB).
    pub const ERROR: &str = "dlq_error";
    /// The topic the message came from.
    pub const TOPIC: &str = "dlq_topic";
    /// Its partition there.
    pub const PARTITION: &str = "dlq_partition";
    /// Its offset there.
    pub const OFFSET: &str = "dlq_offset";
    /// How many times the handler ran.
    pub const ATTEMPTS: &str = "dlq_attempts";
    /// The consumer group that gave up.
    pub const GROUP: &str = "dlq_group";
}
