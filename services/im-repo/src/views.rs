//! What one user sees: their conversations with last message and read pointer, and unread
//! counts (last seq − read seq: seqs are contiguous, so no count query is needed).

use gochat_db::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use gochat_proto::repo as pb;

use crate::{Error, Repo, convert, entity::member, required};

impl Repo {
    async fn memberships(&self, user: &str) -> Result<Vec<member::Model>, Error> {
        Ok(member::Entity::find()
            .filter(member::Column::UserId.eq(user))
            .all(self.db.reader())
            .await?)
    }

    pub(crate) async fn list_conversations(
        &self,
        req: pb::ListConversationsRequest,
    ) -> Result<pb::ConversationViews, Error> {
        let user = required("user_id", &req.user_id)?;
        let memberships = self.memberships(user).await?;
        let ids: Vec<String> = memberships
            .iter()
            .map(|m| m.conversation_id.clone())
            .collect();
        let mut last = self.last_messages(&ids).await?;
        let mut conversations = Vec::with_capacity(memberships.len());
        for membership in memberships {
            let conversation = self.conversation_row(&membership.conversation_id).await?;
            let last_message = last.remove(&membership.conversation_id);
            conversations.push(pb::ConversationView {
                conversation: Some(convert::conversation(conversation)),
                last_seq: last_message.as_ref().map_or(0, |m| m.seq),
                last_message,
                member: Some(convert::member(membership)),
            });
        }
        // Pinned first, then the most recently active.
        conversations.sort_by_key(|view| {
            let pinned = view.member.as_ref().is_some_and(|m| m.pinned);
            let active = view.last_message.as_ref().map_or(0, |m| m.created_at_ms);
            (std::cmp::Reverse(pinned), std::cmp::Reverse(active))
        });
        Ok(pb::ConversationViews { conversations })
    }

    pub(crate) async fn unread(&self, req: pb::UnreadRequest) -> Result<pb::UnreadResponse, Error> {
        let user = required("user_id", &req.user_id)?;
        let memberships = self.memberships(user).await?;
        let mut total = 0;
        let mut conversations = Vec::new();
        for membership in memberships {
            let last_seq = self.last_seq(&membership.conversation_id).await?;
            let unread = (last_seq - membership.read_seq).max(0);
            total += unread;
            conversations.push(pb::UnreadConversation {
                conversation_id: membership.conversation_id,
                unread,
                last_seq,
                read_seq: membership.read_seq,
            });
        }
        Ok(pb::UnreadResponse {
            total,
            conversations,
        })
    }
}
