//! Group commit: messages sent at the same time are stored in one repository call (one
//! transaction, which also gives them their seqs), and each sender is answered only once its
//! message is stored.

use gochat_clog::Logger;
use gochat_core::Context;
use gochat_proto::{common::Message, repo::StoreMessagesRequest};
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Request, Status};

use crate::RepoHandle;

/// The most messages one store call takes.
const MAX_BATCH: usize = 256;

/// What storing one message came to.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// The message as stored, with its seq; for a resend, the one stored first.
    pub(crate) message: Message,
    /// Whether it was stored earlier (by another call, or earlier in the same batch).
    pub(crate) resent: bool,
}

type Reply = oneshot::Sender<Result<Stored, Status>>;

/// Hands messages to the storing task.
#[derive(Clone, Debug)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<(Message, Reply)>,
}

impl Batcher {
    pub(crate) fn start(ctx: &Context, repo: RepoHandle, log: Logger) -> Self {
        let (queue, mut incoming) = mpsc::channel::<(Message, Reply)>(4 * MAX_BATCH);
        let stop = ctx.clone();
        ctx.spawn(async move {
            while let Some(Some(first)) = stop.run_until_cancelled(incoming.recv()).await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                store(&repo, &log, batch).await;
            }
        });
        Self { queue }
    }

    /// Stores `message` (with the others waiting now; its seq is given by the repository):
    /// the stored message, or the one stored earlier with the same client_msg_id.
    pub(crate) async fn store(&self, message: Message) -> Result<Stored, Status> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((message, reply))
            .await
            .map_err(|_| Status::unavailable("im-logic is shutting down"))?;
        answer
            .await
            .map_err(|_| Status::unavailable("im-logic is shutting down"))?
    }
}

impl Batcher {
    /// Stores `messages` in their order (seqs of one conversation rise in it), with the
    /// others waiting now: an answer per message, in order.
    pub(crate) async fn store_many(&self, messages: Vec<Message>) -> Vec<Result<Stored, Status>> {
        let mut answers = Vec::with_capacity(messages.len());
        for message in messages {
            let (reply, answer) = oneshot::channel();
            let queued = self.queue.send((message, reply)).await.is_ok();
            answers.push(queued.then_some(answer));
        }
        let mut stored = Vec::with_capacity(answers.len());
        for answer in answers {
            stored.push(match answer {
                Some(answer) => answer
                    .await
                    .unwrap_or_else(|_| Err(Status::unavailable("im-logic is shutting down"))),
                None => Err(Status::unavailable("im-logic is shutting down")),
            });
        }
        stored
    }
}

/// One repository call for `messages`: an answer per message, in order.
async fn store_all(repo: &RepoHandle, messages: Vec<Message>) -> Result<Vec<Stored>, Status> {
    let sent = messages.len();
    let answer = repo
        .store_messages(Request::new(StoreMessagesRequest { messages }))
        .await?
        .into_inner();
    if answer.stored.len() != sent || answer.resent.len() != sent {
        return Err(Status::internal(format!(
            "the repository answered {} of {sent} messages",
            answer.stored.len().min(answer.resent.len())
        )));
    }
    Ok(answer
        .stored
        .into_iter()
        .zip(answer.resent)
        .map(|(message, resent)| Stored { message, resent })
        .collect())
}

/// Whether a failed batch may be one message's fault (a conversation gone, a bad field), so
/// that storing each alone answers the others.
fn one_message_may_be_at_fault(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::AlreadyExists
    )
}

async fn store(repo: &RepoHandle, log: &Logger, batch: Vec<(Message, Reply)>) {
    let messages: Vec<Message> = batch.iter().map(|(m, _)| m.clone()).collect();
    match store_all(repo, messages).await {
        Ok(stored) => {
            for ((_, reply), stored) in batch.into_iter().zip(stored) {
                let _ = reply.send(Ok(stored));
            }
        }
        // The whole batch rolled back, perhaps for one message: store each alone, so only
        // that sender gets the error. Nothing of the failed call was stored, no seq taken.
        Err(status) if batch.len() > 1 && one_message_may_be_at_fault(&status) => {
            gochat_clog::debug!(log, error = %status, size = batch.len(), "a batch failed; storing one by one");
            for (message, reply) in batch {
                let alone = store_all(repo, vec![message]).await.and_then(|mut one| {
                    one.pop()
                        .ok_or_else(|| Status::internal("the repository stored nothing"))
                });
                let _ = reply.send(alone);
            }
        }
        // The database is away or failing: every sender is told (and its client resends).
        Err(status) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(status.clone()));
            }
        }
    }
}
