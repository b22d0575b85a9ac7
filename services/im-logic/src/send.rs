//! Sending a message: membership → store (group commit; the repository gives the seq and
//! finds a resend of the client_msg_id) → ack → route. Nothing is acked before it is stored; a
//! resend gets the first ack and is not routed again. A batch of sends (the WebSocket path) is
//! checked concurrently and stored in its order, in one pass through the group commit.

use futures_util::future::join_all;
use gochat_proto::{
    common::{Conversation, ConversationType, Message},
    logic::{Ack, SendMessageRequest},
    repo::{GetConversationRequest, GetGroupRequest, GetMemberRequest, GetOrCreateSingleRequest},
};
use tonic::{Code, Request};

use crate::{Error, Logic, batch::Stored};

/// The message types clients may send.
const TYPES: [&str; 4] = ["text", "image", "file", "system"];

/// A send that passed every check: its conversation and the message to store (seq 0).
struct Prepared {
    conversation: Conversation,
    draft: Message,
}

impl Logic {
    /// Stores and routes one message; the ack, once stored.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad message; [`Error::Forbidden`] for a non-member;
    /// the repository failing (routing failures are logged: the message is stored).
    pub async fn send(&self, req: SendMessageRequest) -> Result<Ack, Error> {
        let Prepared {
            conversation,
            draft,
        } = self.prepare(req).await?;
        let stored = self.batcher.store(draft).await?;
        Ok(self.answer(&conversation, stored).await)
    }

    /// Sends a batch: each checked on its own, all at once; those that passed stored in the
    /// batch's order (so one conversation's messages get their seqs in the order sent) in one
    /// pass through the group commit; then routed together ([`Logic::route_batch`], records
    /// keyed by `key`). An answer per send, in order.
    ///
    /// # Errors
    /// A check failing for a reason that may pass later (a backend away): nothing of the batch
    /// was stored, so trying the whole batch again keeps its order.
    pub(crate) async fn send_batch(
        &self,
        reqs: Vec<SendMessageRequest>,
        key: &str,
    ) -> Result<Vec<Result<Ack, Error>>, Error> {
        let prepared = join_all(reqs.into_iter().map(|req| self.prepare(req))).await;
        let mut conversations = Vec::with_capacity(prepared.len());
        let mut drafts = Vec::with_capacity(prepared.len());
        let mut refused = Vec::with_capacity(prepared.len());
        for outcome in prepared {
            match outcome {
                Ok(Prepared {
                    conversation,
                    draft,
                }) => {
                    conversations.push(conversation);
                    drafts.push(draft);
                    refused.push(None);
                }
                Err(e) if e.is_temporary() => return Err(e),
                Err(e) => refused.push(Some(e)),
            }
        }
        let stored = self.batcher.store_many(drafts).await;
        // Routed: what was stored now (a resend was routed when it was stored first).
        let routed: Vec<(&Conversation, &Message)> = conversations
            .iter()
            .zip(&stored)
            .filter_map(|(conversation, stored)| match stored {
                Ok(Stored {
                    message,
                    resent: false,
                }) => Some((conversation, message)),
                _ => None,
            })
            .collect();
        if let Err(e) = self.route_batch(&routed, key).await {
            // Stored: the acks stand whatever routing does; receivers pull what they missed.
            gochat_clog::warn!(self.deps.log, error = %e, size = routed.len(), "routing a stored batch failed");
        }
        let mut answered = stored
            .into_iter()
            .map(|stored| stored.map(|s| ack_of(&s.message)).map_err(Error::from));
        Ok(refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(e) => Err(e),
                None => answered.next().unwrap_or_else(|| {
                    Err(Error::Internal(
                        "a send of the batch got no answer".to_owned(),
                    ))
                }),
            })
            .collect())
    }

    /// The ack of a stored message; routes it unless it is a resend.
    async fn answer(&self, conversation: &Conversation, stored: Stored) -> Ack {
        let Stored { message, resent } = stored;
        let ack = ack_of(&message);
        // A resend is answered with its ack only: routing it again would let one stored
        // message reach every socket as often as it is resent.
        if resent {
            return ack;
        }
        // Stored: the ack stands whatever routing does; receivers pull what they missed.
        if let Err(e) = self.route(conversation, &message).await {
            gochat_clog::warn!(self.deps.log, error = %e, conversation = %conversation.id, "routing a stored message failed");
        }
        ack
    }

    /// Every check of a send (rate limits, fields, membership): what to store.
    async fn prepare(&self, req: SendMessageRequest) -> Result<Prepared, Error> {
        let user = req.user_id.trim();
        if user.is_empty() {
            return Err(Error::Unauthorized("no user".to_owned()));
        }
        self.limit(crate::SEND_RULE, user).await?;
        if req.content.is_empty() {
            return Err(Error::InvalidArgument("content is empty".to_owned()));
        }
        if req.content.len() > self.config.max_content_bytes {
            return Err(Error::InvalidArgument(format!(
                "content is longer than {} bytes",
                self.config.max_content_bytes
            )));
        }
        if !TYPES.contains(&req.message_type.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "message_type must be one of {TYPES:?}"
            )));
        }
        if req.client_msg_id.is_empty() || req.client_msg_id.len() > 64 {
            return Err(Error::InvalidArgument(
                "client_msg_id must be 1 to 64 bytes".to_owned(),
            ));
        }
        let conversation = self.conversation_for(&req).await?;
        self.check_member(&conversation, user).await?;
        if conversation.r#type == i32::from(ConversationType::World) {
            // Everyone reads the world channel: its own, much lower limit.
            self.limit(crate::WORLD_RULE, user).await?;
        } else if conversation.r#type == i32::from(ConversationType::Group)
            && self.is_large_group(&conversation).await?
        {
            // One message to a large group is thousands of deliveries.
            self.limit(crate::LARGE_GROUP_RULE, user).await?;
        }

        // The seq is given by the repository in the transaction that stores the message; a
        // resend (the same client_msg_id) is found there, by the unique key, and answered with
        // the message stored first.
        let draft = Message {
            message_id: self.deps.ids.snowflake()?.to_string(),
            conversation_id: conversation.id.clone(),
            seq: 0,
            from_user_id: user.to_owned(),
            content: req.content,
            message_type: req.message_type,
            client_msg_id: req.client_msg_id,
            created_at_ms: gochat_proto::now_ms(),
        };
        Ok(Prepared {
            conversation,
            draft,
        })
    }

    async fn conversation_for(&self, req: &SendMessageRequest) -> Result<Conversation, Error> {
        let repo = &self.deps.repo;
        let found = if !req.to_user_id.is_empty() {
            repo.get_or_create_single(Request::new(GetOrCreateSingleRequest {
                user_id: req.user_id.clone(),
                peer_user_id: req.to_user_id.clone(),
            }))
            .await
        } else if !req.conversation_id.is_empty() {
            repo.get_conversation(Request::new(GetConversationRequest {
                conversation_id: req.conversation_id.clone(),
            }))
            .await
        } else {
            return Err(Error::InvalidArgument(
                "conversation_id or to_user_id is required".to_owned(),
            ));
        };
        found.map(tonic::Response::into_inner).map_err(|status| {
            if status.code() == Code::NotFound {
                Error::Forbidden("not a member of this conversation".to_owned())
            } else {
                status.into()
            }
        })
    }

    /// Whether a group conversation has more members than go out at once (`small_group_limit`):
    /// its messages fan out through im-task, and its senders get the `large_group_send` limit.
    async fn is_large_group(&self, conversation: &Conversation) -> Result<bool, Error> {
        if self.deps.limiter.is_none() {
            return Ok(false);
        }
        let group = self
            .deps
            .repo
            .get_group(Request::new(GetGroupRequest {
                group_id: conversation.group_id.clone(),
            }))
            .await?
            .into_inner();
        Ok(usize::try_from(group.member_count).unwrap_or(usize::MAX)
            > self.config.small_group_limit)
    }

    /// Only members may write (everyone may write the world channel).
    pub(crate) async fn check_member(
        &self,
        conversation: &Conversation,
        user: &str,
    ) -> Result<(), Error> {
        if conversation.r#type == i32::from(ConversationType::World) {
            return Ok(());
        }
        let member = self
            .deps
            .repo
            .get_member(Request::new(GetMemberRequest {
                conversation_id: conversation.id.clone(),
                user_id: user.to_owned(),
            }))
            .await
            .map_err(Error::from);
        match member {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(Error::Forbidden(
                "not a member of this conversation".to_owned(),
            )),
            Err(e) => Err(e),
        }
    }
}

/// What the sender is told of its stored message.
fn ack_of(message: &Message) -> Ack {
    Ack {
        client_msg_id: message.client_msg_id.clone(),
        message_id: message.message_id.clone(),
        conversation_id: message.conversation_id.clone(),
        seq: message.seq,
        created_at_ms: message.created_at_ms,
    }
}
