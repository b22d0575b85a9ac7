#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod push;

use std::sync::Arc;

use gochat_clog::Logger;
use gochat_coord::Coord;
use gochat_mq::{HandlerError, Mq, Permanent, Received, Subscription};
use gochat_proto::{
    common::{ConversationType, Message},
    events::{Downstream, Task, downstream, task},
    prost::Message as _,
    repo::{GetConversationRequest, ListMembersRequest},
};
use im_logic::{RepoHandle, Router};
use serde::{Deserialize, Serialize};
use tonic::Request;

pub use push::{LogPush, PushError, PushProvider, WebhookPush};

/// The consumer group of im-task instances (under the topic prefix).
pub const TASK_GROUP: &str = "im-task";

/// The service name gateways register under in coord (the world channel reaches each).
pub const GATEWAY_SERVICE: &str = "im-gateway";

/// im-task's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Members looked up and delivered per step of a large group's fanout. Default: 500.
    pub fanout_batch: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self { fanout_batch: 500 }
    }
}

/// Consumes `im-task`: large groups' fanout in batches, world broadcasts to every gateway,
/// offline pushes.
#[derive(Clone)]
pub struct TaskWorker {
    repo: RepoHandle,
    router: Router,
    mq: Mq,
    coord: Coord,
    push: Arc<dyn PushProvider>,
    config: Config,
    log: Logger,
}

impl std::fmt::Debug for TaskWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWorker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TaskWorker {
    /// A worker reading the repository, delivering through `router`, consuming `mq`, finding
    /// gateways through `coord` and pushing through `push`.
    pub fn new(
        repo: RepoHandle,
        router: Router,
        mq: Mq,
        coord: Coord,
        push: Arc<dyn PushProvider>,
        config: Config,
        log: Logger,
    ) -> Self {
        Self {
            repo,
            router,
            mq,
            coord,
            push,
            config,
            log,
        }
    }

    /// Consumes the task topic of the router's topics until the subscription is shut down. A failed job (a push the
    /// webhook refused, a backend down) is retried with backoff, then dead-lettered.
    ///
    /// # Errors
    /// The bus failing to subscribe.
    pub async fn run(&self) -> Result<Subscription, gochat_mq::Error> {
        let worker = self.clone();
        let handler = move |message: Received| {
            let worker = worker.clone();
            async move { worker.handle(&message).await }
        };
        let topic = self.router.topics().task();
        self.mq
            .consumer(&self.router.topics().group(TASK_GROUP))
            .subscribe(&[topic.as_str()], handler)
            .await
    }

    async fn handle(&self, received: &Received) -> Result<(), HandlerError> {
        let job = Task::decode(received.value.as_ref())
            .map_err(|e| Permanent(format!("not a Task: {e}").into()))?;
        match job.job {
            Some(task::Job::Fanout(fanout)) => {
                let message = fanout
                    .message
                    .ok_or_else(|| Permanent("a fanout without a message".into()))?;
                self.fan_out(&message).await
            }
            Some(task::Job::Push(push)) => {
                let message = push
                    .message
                    .ok_or_else(|| Permanent("a push without a message".into()))?;
                self.push.push(&push.user_ids, &message).await?;
                Ok(())
            }
            Some(task::Job::EndSession(end)) => {
                let kick = end
                    .kick
                    .ok_or_else(|| Permanent("an end_session without a kick".into()))?;
                let down = Downstream {
                    user_ids: vec![end.user_id.clone()],
                    frame: Some(downstream::Frame::Kick(kick)),
                    more: Vec::new(),
                };
                let gateways = self.gateways().await?;
                self.router
                    .to_gateways(&gateways, &down, &end.user_id)
                    .await?;
                Ok(())
            }
            None => Err(Permanent("an empty Task".into()).into()),
        }
    }

    /// The ids of the gateways running now.
    async fn gateways(&self) -> Result<Vec<String>, gochat_coord::Error> {
        let instances = self.coord.registry().discover(GATEWAY_SERVICE).await?;
        Ok(instances.into_iter().map(|instance| instance.id).collect())
    }

    async fn fan_out(&self, message: &Message) -> Result<(), HandlerError> {
        let conversation = self
            .repo
            .get_conversation(Request::new(GetConversationRequest {
                conversation_id: message.conversation_id.clone(),
            }))
            .await?
            .into_inner();
        if conversation.r#type == i32::from(ConversationType::World) {
            let gateways = self.gateways().await?;
            gochat_clog::debug!(self.log, gateways = gateways.len(), "world broadcast");
            self.router.broadcast(&gateways, message).await?;
            return Ok(());
        }
        let members = self
            .repo
            .list_members(Request::new(ListMembersRequest {
                conversation_id: message.conversation_id.clone(),
            }))
            .await?
            .into_inner()
            .members;
        for batch in members.chunks(self.config.fanout_batch.max(1)) {
            let users = batch.iter().map(|m| m.user_id.clone()).collect();
            self.router.deliver(users, message).await?;
        }
        Ok(())
    }
}
