//! Group commit: messages sent at the same time are stored in one repository call (one
//! transaction), and each sender is answered only once its message is stored.

use gochat_clog::Logger;
use gochat_core::Context;
use gochat_proto::{common::Message, repo::StoreMessagesRequest};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Status};

use crate::RepoHandle;

/// The most messages one store call takes.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Message, Status>>;

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

    /// Stores `message` (with the others waiting now); the stored message, or the one stored
    /// earlier with the same client_msg_id.
    pub(crate) async fn store(&self, message: Message) -> Result<Message, Status> {
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

async fn store(repo: &RepoHandle, log: &Logger, batch: Vec<(Message, Reply)>) {
    let messages: Vec<Message> = batch.iter().map(|(m, _)| m.clone()).collect();
    let whole = repo
        .store_messages(Request::new(StoreMessagesRequest { messages }))
        .await;
    match whole {
        Ok(stored) => {
            let stored = stored.into_inner().stored;
            for ((_, reply), message) in batch.into_iter().zip(stored) {
                let _ = reply.send(Ok(message));
            }
        }
        // One message failing (a seq taken) fails the call: store each alone, so only that
        // one sender gets the error.
        Err(status) if batch.len() > 1 => {
            gochat_clog::debug!(log, error = %status, size = batch.len(), "a batch failed; storing one by one");
            for (message, reply) in batch {
                let alone = repo
                    .store_messages(Request::new(StoreMessagesRequest {
                        messages: vec![message],
                    }))
                    .await
                    .and_then(|stored| {
                        stored
                            .into_inner()
                            .stored
                            .pop()
                            .ok_or_else(|| Status::internal("the repository stored nothing"))
                    });
                let _ = reply.send(alone);
            }
        }
        Err(status) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(status.clone()));
            }
        }
    }
}
