//! Messages: stored in batches (one transaction per burst, not per message), read by seq,
//! deduplicated by (conversation, sender, client_msg_id).

use gochat_db::{
    TxError,
    sea_orm::{
        ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
        QueryOrder, QuerySelect, Select,
    },
};
use gochat_proto::{common, repo as pb};

use crate::{Error, Repo, convert, entity::message, error::is_unique_violation, required};

/// The most messages one history page holds.
pub const MAX_PAGE: i32 = 100;

impl Repo {
    /// `messages`, or the shard holding `conversation` when messages are sharded.
    fn messages_in(&self, conversation: &str) -> Select<message::Entity> {
        match self.db.shard("messages", conversation) {
            Ok(shard) => shard.find::<message::Entity>(),
            Err(_) => message::Entity::find(),
        }
    }

    async fn insert_message(
        &self,
        tx: &DatabaseTransaction,
        row: message::ActiveModel,
        conversation: &str,
    ) -> Result<(), DbErr> {
        use gochat_db::sea_orm::EntityTrait as _;
        match self.db.shard("messages", conversation) {
            Ok(shard) => shard.insert(row).exec(tx).await.map(drop),
            Err(_) => message::Entity::insert(row).exec(tx).await.map(drop),
        }
    }

    /// Stores a burst in one transaction. A message whose (conversation, sender,
    /// client_msg_id) is stored already is answered with the stored one; when the batch hits
    /// a unique key, each message is retried on its own so one duplicate cannot fail the rest.
    pub(crate) async fn store_messages(
        &self,
        req: pb::StoreMessagesRequest,
    ) -> Result<pb::StoreMessagesResponse, Error> {
        for m in &req.messages {
            required("conversation_id", &m.conversation_id)?;
            required("from_user_id", &m.from_user_id)?;
            required("client_msg_id", &m.client_msg_id)?;
            if m.seq <= 0 {
                return Err(Error::InvalidArgument("seq must be above zero".to_owned()));
            }
        }
        let mut stored = Vec::with_capacity(req.messages.len());
        let batch = req.messages.clone();
        let whole = self
            .db
            .transaction(async |tx| {
                for m in &batch {
                    self.insert_message(tx, row(m), &m.conversation_id).await?;
                }
                Ok::<_, DbErr>(())
            })
            .await;
        match whole {
            Ok(()) => {
                return Ok(pb::StoreMessagesResponse {
                    stored: req.messages,
                });
            }
            Err(TxError::Rollback(e)) if is_unique_violation(&e) => {}
            Err(TxError::Rollback(e)) => return Err(e.into()),
            Err(TxError::Db(e)) => return Err(e.into()),
        }
        for m in req.messages {
            let one = m.clone();
            let alone = self
                .db
                .transaction(async |tx| {
                    self.insert_message(tx, row(&one), &one.conversation_id)
                        .await
                })
                .await;
            match alone {
                Ok(()) => stored.push(m),
                Err(TxError::Rollback(e)) if is_unique_violation(&e) => {
                    stored.push(self.stored_twin(&m).await?);
                }
                Err(TxError::Rollback(e)) => return Err(e.into()),
                Err(TxError::Db(e)) => return Err(e.into()),
            }
        }
        Ok(pb::StoreMessagesResponse { stored })
    }

    /// The message stored earlier with `m`'s client_msg_id; a clash on seq alone is refused.
    async fn stored_twin(&self, m: &common::Message) -> Result<common::Message, Error> {
        self.messages_in(&m.conversation_id)
            .filter(message::Column::ConversationId.eq(&m.conversation_id))
            .filter(message::Column::FromUserId.eq(&m.from_user_id))
            .filter(message::Column::ClientMsgId.eq(&m.client_msg_id))
            .one(self.db.connection())
            .await?
            .map(convert::message)
            .ok_or_else(|| Error::AlreadyExists(format!("seq {} of {}", m.seq, m.conversation_id)))
    }

    pub(crate) async fn get_messages(
        &self,
        req: pb::GetMessagesRequest,
    ) -> Result<pb::MessagePage, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        let limit = if req.limit <= 0 {
            50
        } else {
            req.limit.min(MAX_PAGE)
        };
        let mut query = self
            .messages_in(conversation)
            .filter(message::Column::ConversationId.eq(conversation));
        if let Some(before) = req.before_seq {
            query = query.filter(message::Column::Seq.lt(before));
        }
        if let Some(after) = req.after_seq {
            query = query.filter(message::Column::Seq.gt(after));
        }
        if req.from_seq > 0 {
            query = query.filter(message::Column::Seq.gt(req.from_seq));
        }
        // Paging forward from after_seq reads upwards; otherwise the newest page, downwards.
        let upwards = req.after_seq.is_some() && req.before_seq.is_none();
        query = if upwards {
            query.order_by_asc(message::Column::Seq)
        } else {
            query.order_by_desc(message::Column::Seq)
        };
        let page = u64::try_from(limit).unwrap_or(50);
        let mut rows = query.limit(page + 1).all(self.db.reader()).await?;
        let has_more = rows.len() as u64 > page;
        rows.truncate(page as usize);
        if !upwards {
            rows.reverse();
        }
        Ok(pb::MessagePage {
            messages: rows.into_iter().map(convert::message).collect(),
            has_more,
        })
    }

    pub(crate) async fn max_seq(
        &self,
        req: pb::MaxSeqRequest,
    ) -> Result<pb::MaxSeqResponse, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        Ok(pb::MaxSeqResponse {
            seq: self.last_seq(conversation).await?,
        })
    }

    /// The highest stored seq of a conversation (0 when it has none).
    pub(crate) async fn last_seq(&self, conversation: &str) -> Result<i64, Error> {
        let row = self
            .messages_in(conversation)
            .filter(message::Column::ConversationId.eq(conversation))
            .order_by_desc(message::Column::Seq)
            .one(self.db.connection())
            .await?;
        Ok(row.map_or(0, |r| r.seq))
    }
}

fn row(m: &common::Message) -> message::ActiveModel {
    message::ActiveModel {
        id: Set(m.message_id.clone()),
        conversation_id: Set(m.conversation_id.clone()),
        seq: Set(m.seq),
        from_user_id: Set(m.from_user_id.clone()),
        content: Set(m.content.clone()),
        message_type: Set(m.message_type.clone()),
        client_msg_id: Set(m.client_msg_id.clone()),
        created_at_ms: Set(m.created_at_ms),
    }
}
