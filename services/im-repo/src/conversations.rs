//! Conversations and memberships: one single chat per pair, the world channel, read pointers.

use gochat_db::{
    TxError,
    sea_orm::{
        ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter,
        sea_query::Expr,
    },
};
use gochat_proto::{
    common::{self, ConversationType, Role},
    repo as pb,
};

use crate::{
    Error, Repo, WORLD, convert,
    entity::{conversation, member},
    error::is_unique_violation,
    now_ms, required,
};

pub(crate) fn conversation_key(id: &str) -> String {
    format!("conv:{id}")
}

pub(crate) fn member_key(conversation: &str, user: &str) -> String {
    format!("member:{conversation}:{user}")
}

pub(crate) fn members_key(conversation: &str) -> String {
    format!("members:{conversation}")
}

/// A new membership row.
pub(crate) fn new_member(
    conversation: &str,
    user: &str,
    role: Role,
    now: i64,
) -> member::ActiveModel {
    member::ActiveModel {
        conversation_id: Set(conversation.to_owned()),
        user_id: Set(user.to_owned()),
        role: Set(role.into()),
        read_seq: Set(0),
        muted: Set(false),
        pinned: Set(false),
        joined_at_ms: Set(now),
        name: Set(String::new()),
        joined_seq: Set(0),
    }
}

impl Repo {
    pub(crate) async fn ensure_world(&self) -> Result<(), Error> {
        let world = conversation::ActiveModel {
            id: Set(WORLD.to_owned()),
            kind: Set(ConversationType::World.into()),
            name: Set("World".to_owned()),
            group_id: Set(None),
            pair_key: Set(None),
            created_at_ms: Set(now_ms()),
        };
        match world.insert(self.db.connection()).await {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn conversation_row(&self, id: &str) -> Result<conversation::Model, Error> {
        let db = self.db.reader().clone();
        let owned = id.to_owned();
        self.cache
            .get_or_load_json(
                &conversation_key(id),
                self.config.cache_ttl,
                || async move { conversation::Entity::find_by_id(owned).one(&db).await },
            )
            .await?
            .ok_or_else(|| Error::NotFound(format!("conversation {id}")))
    }

    pub(crate) async fn get_conversation(
        &self,
        req: pb::GetConversationRequest,
    ) -> Result<common::Conversation, Error> {
        let id = required("conversation_id", &req.conversation_id)?;
        Ok(convert::conversation(self.conversation_row(id).await?))
    }

    pub(crate) async fn get_or_create_single(
        &self,
        req: pb::GetOrCreateSingleRequest,
    ) -> Result<common::Conversation, Error> {
        let user = required("user_id", &req.user_id)?;
        let peer = required("peer_user_id", &req.peer_user_id)?;
        if user == peer {
            return Err(Error::InvalidArgument("a chat needs two users".to_owned()));
        }
        self.user_row(peer).await?;
        let (low, high) = if user < peer {
            (user, peer)
        } else {
            (peer, user)
        };
        let pair_key = format!("{low}:{high}");
        if let Some(found) = self.single_by_pair(&pair_key).await? {
            return Ok(convert::conversation(found));
        }
        let id = self.next_id()?;
        let now = now_ms();
        let row = conversation::ActiveModel {
            id: Set(id.clone()),
            kind: Set(ConversationType::Single.into()),
            name: Set(String::new()),
            group_id: Set(None),
            pair_key: Set(Some(pair_key.clone())),
            created_at_ms: Set(now),
        };
        let (low, high) = (low.to_owned(), high.to_owned());
        let created = self
            .db
            .transaction(async move |tx| {
                let row = row.insert(tx).await?;
                for user in [&low, &high] {
                    new_member(&id, user, Role::Member, now).insert(tx).await?;
                }
                Ok::<_, DbErr>(row)
            })
            .await;
        match created {
            Ok(row) => Ok(convert::conversation(row)),
            // Both users created it at once: the other insert won.
            Err(TxError::Rollback(e)) if is_unique_violation(&e) => self
                .single_by_pair(&pair_key)
                .await?
                .map(convert::conversation)
                .ok_or_else(|| Error::NotFound(format!("conversation {pair_key}"))),
            Err(TxError::Rollback(e)) => Err(e.into()),
            Err(TxError::Db(e)) => Err(e.into()),
        }
    }

    async fn single_by_pair(&self, pair_key: &str) -> Result<Option<conversation::Model>, Error> {
        Ok(conversation::Entity::find()
            .filter(conversation::Column::PairKey.eq(pair_key))
            .one(self.db.connection())
            .await?)
    }

    /// The membership, or `NotFound` (cached either way: "not a member" is asked often).
    pub(crate) async fn member_row(
        &self,
        conversation: &str,
        user: &str,
    ) -> Result<member::Model, Error> {
        // From the primary: a replica may still show a member who was just removed, and the
        // cache would keep that for a whole TTL.
        let db = self.db.connection().clone();
        let (c, u) = (conversation.to_owned(), user.to_owned());
        self.cache
            .get_or_load_json(
                &member_key(conversation, user),
                self.config.cache_ttl,
                || async move { member::Entity::find_by_id((c, u)).one(&db).await },
            )
            .await?
            .ok_or_else(|| Error::NotFound(format!("member {user} of {conversation}")))
    }

    pub(crate) async fn get_member(
        &self,
        req: pb::GetMemberRequest,
    ) -> Result<common::Member, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        let user = required("user_id", &req.user_id)?;
        Ok(convert::member(self.member_row(conversation, user).await?))
    }

    pub(crate) async fn member_rows(
        &self,
        conversation: &str,
    ) -> Result<Vec<member::Model>, Error> {
        // From the primary, as above: who receives a delivery follows a removal at once.
        let db = self.db.connection().clone();
        let owned = conversation.to_owned();
        Ok(self
            .cache
            .get_or_load_json(
                &members_key(conversation),
                self.config.cache_ttl,
                || async move {
                    member::Entity::find()
                        .filter(member::Column::ConversationId.eq(owned))
                        .all(&db)
                        .await
                        .map(Some)
                },
            )
            .await?
            .unwrap_or_default())
    }

    pub(crate) async fn list_members(
        &self,
        req: pb::ListMembersRequest,
    ) -> Result<pb::Members, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        Ok(pb::Members {
            members: self
                .member_rows(conversation)
                .await?
                .into_iter()
                .map(convert::member)
                .collect(),
        })
    }

    pub(crate) async fn update_member(
        &self,
        req: pb::UpdateMemberRequest,
    ) -> Result<common::Member, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        let user = required("user_id", &req.user_id)?;
        let row = member::Entity::find_by_id((conversation.to_owned(), user.to_owned()))
            .one(self.db.connection())
            .await?
            .ok_or_else(|| Error::NotFound(format!("member {user} of {conversation}")))?;
        let mut row: member::ActiveModel = row.into();
        if let Some(muted) = req.muted {
            row.muted = Set(muted);
        }
        if let Some(name) = req.name {
            row.name = Set(name.trim().to_owned());
        }
        if let Some(pinned) = req.pinned {
            row.pinned = Set(pinned);
        }
        let row = row.update(self.db.connection()).await?;
        self.forget_member(conversation, user).await?;
        Ok(convert::member(row))
    }

    /// Moves the read pointer forward only: an older seq changes nothing.
    pub(crate) async fn set_read_seq(
        &self,
        req: pb::SetReadSeqRequest,
    ) -> Result<common::Member, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        let user = required("user_id", &req.user_id)?;
        // A read pointer never passes what the conversation holds.
        let seq = req.seq.min(self.last_seq(conversation).await?);
        member::Entity::update_many()
            .col_expr(member::Column::ReadSeq, Expr::value(seq))
            .filter(member::Column::ConversationId.eq(conversation))
            .filter(member::Column::UserId.eq(user))
            .filter(member::Column::ReadSeq.lt(seq))
            .exec(self.db.connection())
            .await?;
        self.forget_member(conversation, user).await?;
        self.get_member(pb::GetMemberRequest {
            conversation_id: conversation.to_owned(),
            user_id: user.to_owned(),
        })
        .await
    }

    pub(crate) async fn forget_member(&self, conversation: &str, user: &str) -> Result<(), Error> {
        self.forget(&[&member_key(conversation, user), &members_key(conversation)])
            .await
    }
}
