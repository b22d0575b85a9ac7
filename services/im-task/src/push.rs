//! Offline push: a [`PushProvider`] tells users who are connected nowhere about a message.
//! A failed push fails the im-task job, which gochat-mq retries with backoff and then
//! dead-letters (`im-task.dlq`), so a push is never silently dropped.

use std::time::Duration;

use gochat_clog::Logger;
use gochat_core::BoxFuture;
use gochat_proto::common::Message;
use serde::Serialize;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The webhook could not be reached or did not answer in time.
    #[error("push webhook unreachable: {0}")]
    Unreachable(String),
    /// The webhook answered with an error status.
    #[error("push webhook answered {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

/// Notifies offline users of a message.
pub trait PushProvider: Send + Sync + 'static {
    /// Pushes `message` to `user_ids`.
    fn push<'a>(
        &'a self,
        user_ids: &'a [String],
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), PushError>>;
}

/// For development: logs each push.
#[derive(Clone, Debug)]
pub struct LogPush {
    log: Logger,
}

impl LogPush {
    /// Logs through `log`.
    pub fn new(log: Logger) -> Self {
        Self { log }
    }
}

impl PushProvider for LogPush {
    fn push<'a>(
        &'a self,
        user_ids: &'a [String],
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            gochat_clog::info!(
                self.log,
                users = user_ids.len(),
                conversation = %message.conversation_id,
                seq = message.seq,
                "push (logged only)"
            );
            Ok(())
        })
    }
}

/// What the webhook receives: `POST` with this JSON body.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    user_ids: &'a [String],
    message_id: &'a str,
    conversation_id: &'a str,
    seq: i64,
    from_user_id: &'a str,
    message_type: &'a str,
    /// The first 256 characters of the content, for a notification's preview.
    preview: String,
}

/// Posts each push as JSON to a URL (a push gateway of your own: APNs/FCM behind it).
/// A 2xx answer is success; anything else, or no answer within the timeout, fails the push.
#[derive(Clone, Debug)]
pub struct WebhookPush {
    url: String,
    client: reqwest::Client,
}

impl WebhookPush {
    /// Posts to `url`, waiting at most `timeout` per push.
    ///
    /// # Errors
    /// [`PushError::Unreachable`] when the HTTP client cannot be built.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, PushError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| PushError::Unreachable(e.to_string()))?;
        Ok(Self {
            url: url.into(),
            client,
        })
    }
}

impl PushProvider for WebhookPush {
    fn push<'a>(
        &'a self,
        user_ids: &'a [String],
        message: &'a Message,
    ) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(async move {
            let payload = Payload {
                user_ids,
                message_id: &message.message_id,
                conversation_id: &message.conversation_id,
                seq: message.seq,
                from_user_id: &message.from_user_id,
                message_type: &message.message_type,
                preview: message.content.chars().take(256).collect(),
            };
            let answer = self
                .client
                .post(&self.url)
                .json(&payload)
                .send()
                .await
                .map_err(|e| PushError::Unreachable(e.to_string()))?;
            if answer.status().is_success() {
                Ok(())
            } else {
                Err(PushError::Refused {
                    status: answer.status().as_u16(),
                })
            }
        })
    }
}
