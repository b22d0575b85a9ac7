//! Messages read by seq: history pages and the highest stored seq (storing is in `store`).

use gochat_db::sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use gochat_proto::repo as pb;

use crate::{Error, Repo, convert, entity::message, required};

/// The most messages one history page holds.
pub const MAX_PAGE: i32 = 100;

impl Repo {
    /// `messages`, or the shard holding `conversation` when messages are sharded.
    pub(crate) fn messages_in(&self, conversation: &str) -> Select<message::Entity> {
        match self.db.shard("messages", conversation) {
            Ok(shard) => shard.find::<message::Entity>(),
            Err(_) => message::Entity::find(),
        }
    }

    /// The table holding `conversation`'s messages: its shard, or `messages`.
    pub(crate) fn messages_table(&self, conversation: &str) -> &str {
        self.db
            .shard("messages", conversation)
            .map_or("messages", |shard| shard.name())
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
