//! Groups: a group row, its conversation, and its members, capped at `max_members`.

use gochat_db::{
    TxError,
    sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter},
};
use gochat_proto::{
    common::{self, ConversationType, Role},
    repo as pb,
};

use crate::{
    Error, Repo,
    conversations::new_member,
    convert,
    entity::{ban, conversation, group, member},
    error::is_unique_violation,
    now_ms, required,
};

fn group_key(id: &str) -> String {
    format!("group:{id}")
}

impl Repo {
    pub(crate) async fn create_group(
        &self,
        req: pb::CreateGroupRequest,
    ) -> Result<common::Group, Error> {
        let name = required("name", &req.name)?.to_owned();
        let owner = required("owner_id", &req.owner_id)?.to_owned();
        let max_members = if req.max_members <= 0 {
            self.config.max_group_members
        } else {
            req.max_members.min(self.config.max_group_members)
        };
        let mut members: Vec<String> = req
            .member_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty() && *id != owner)
            .collect();
        members.sort();
        members.dedup();
        if members.len() + 1 > usize::try_from(max_members).unwrap_or(0) {
            return Err(Error::FailedPrecondition(format!(
                "a group holds at most {max_members} members"
            )));
        }
        let found = self
            .get_users(pb::GetUsersRequest {
                user_ids: members.clone(),
            })
            .await?;
        if found.users.len() != members.len() {
            return Err(Error::NotFound("some member_ids are not users".to_owned()));
        }
        let join_mode = match req.join_mode.trim() {
            "" | group::JOIN_OPEN => group::JOIN_OPEN,
            group::JOIN_INVITE => group::JOIN_INVITE,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "join_mode must be open or invite, not {other:?}"
                )));
            }
        };
        let (group_id, conversation_id, now) = (self.next_id()?, self.next_id()?, now_ms());
        let group_row = group::ActiveModel {
            id: Set(group_id.clone()),
            conversation_id: Set(conversation_id.clone()),
            name: Set(name.clone()),
            description: Set(req.description.trim().to_owned()),
            owner_id: Set(owner.clone()),
            max_members: Set(max_members),
            created_at_ms: Set(now),
            join_mode: Set(join_mode.to_owned()),
            history_visible: Set(req.history_visible),
        };
        let conversation_row = conversation::ActiveModel {
            id: Set(conversation_id.clone()),
            kind: Set(ConversationType::Group.into()),
            name: Set(name),
            group_id: Set(Some(group_id)),
            pair_key: Set(None),
            created_at_ms: Set(now),
        };
        let count = members.len() + 1;
        let row = self
            .db
            .transaction(async |tx| {
                conversation_row.insert(tx).await?;
                let row = group_row.insert(tx).await?;
                new_member(&conversation_id, &owner, Role::Owner, now)
                    .insert(tx)
                    .await?;
                for user in &members {
                    new_member(&conversation_id, user, Role::Member, now)
                        .insert(tx)
                        .await?;
                }
                Ok::<_, DbErr>(row)
            })
            .await
            .map_err(tx_error)?;
        Ok(convert::group(row, count))
    }

    pub(crate) async fn group_row(&self, id: &str) -> Result<group::Model, Error> {
        let db = self.db.reader().clone();
        let owned = id.to_owned();
        self.cache
            .get_or_load_json(&group_key(id), self.config.cache_ttl, || async move {
                group::Entity::find_by_id(owned).one(&db).await
            })
            .await?
            .ok_or_else(|| Error::NotFound(format!("group {id}")))
    }

    pub(crate) async fn get_group(&self, req: pb::GetGroupRequest) -> Result<common::Group, Error> {
        let row = self.group_row(required("group_id", &req.group_id)?).await?;
        let count = self.member_rows(&row.conversation_id).await?.len();
        Ok(convert::group(row, count))
    }

    /// Adds members to a group's conversation (already-members are left as they are), within
    /// the group's `max_members`.
    pub(crate) async fn add_members(
        &self,
        req: pb::AddMembersRequest,
    ) -> Result<pb::Members, Error> {
        let conversation_id = required("conversation_id", &req.conversation_id)?;
        let conversation = self.conversation_row(conversation_id).await?;
        let group_id = conversation
            .group_id
            .ok_or_else(|| Error::FailedPrecondition("not a group conversation".to_owned()))?;
        let group = self.group_row(&group_id).await?;
        let current = self.member_rows(conversation_id).await?;
        let mut adding: Vec<String> = req
            .user_ids
            .iter()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty() && !current.iter().any(|m| &m.user_id == id))
            .collect();
        adding.sort();
        adding.dedup();
        if current.len() + adding.len() > usize::try_from(group.max_members).unwrap_or(0) {
            return Err(Error::FailedPrecondition(format!(
                "the group holds at most {} members",
                group.max_members
            )));
        }
        let found = self
            .get_users(pb::GetUsersRequest {
                user_ids: adding.clone(),
            })
            .await?;
        if found.users.len() != adding.len() {
            return Err(Error::NotFound("some user_ids are not users".to_owned()));
        }
        if req.self_join && !adding.is_empty() {
            if group.join_mode == group::JOIN_INVITE {
                return Err(Error::FailedPrecondition(
                    "this group is invite-only: an admin adds members".to_owned(),
                ));
            }
            let banned = ban::Entity::find()
                .filter(ban::Column::ConversationId.eq(conversation_id))
                .filter(ban::Column::UserId.is_in(adding.clone()))
                .one(self.db.connection())
                .await?;
            if banned.is_some() {
                return Err(Error::FailedPrecondition(
                    "removed from this group: an admin must add you again".to_owned(),
                ));
            }
        }
        let joined_seq = self.last_seq(conversation_id).await?;
        let role = Role::try_from(req.role).unwrap_or(Role::Member);
        let role = if role == Role::Unspecified {
            Role::Member
        } else {
            role
        };
        let now = now_ms();
        let added = self
            .db
            .transaction(async |tx| {
                let mut added = Vec::new();
                if !adding.is_empty() {
                    // Added by an admin (or joining while not banned): no ban stands.
                    ban::Entity::delete_many()
                        .filter(ban::Column::ConversationId.eq(conversation_id))
                        .filter(ban::Column::UserId.is_in(adding.clone()))
                        .exec(tx)
                        .await?;
                }
                for user in &adding {
                    let mut row = new_member(conversation_id, user, role, now);
                    row.joined_seq = Set(joined_seq);
                    added.push(row.insert(tx).await?);
                }
                Ok::<_, DbErr>(added)
            })
            .await
            .map_err(tx_error)?;
        for row in &added {
            self.forget_member(conversation_id, &row.user_id).await?;
        }
        Ok(pb::Members {
            members: added.into_iter().map(convert::member).collect(),
        })
    }

    pub(crate) async fn remove_member(
        &self,
        req: pb::RemoveMemberRequest,
    ) -> Result<pb::Empty, Error> {
        let conversation = required("conversation_id", &req.conversation_id)?;
        let user = required("user_id", &req.user_id)?;
        let removed = self
            .db
            .transaction(async |tx| {
                let removed = member::Entity::delete_many()
                    .filter(member::Column::ConversationId.eq(conversation))
                    .filter(member::Column::UserId.eq(user))
                    .exec(tx)
                    .await?;
                if req.ban && removed.rows_affected > 0 {
                    ban::Entity::delete_many()
                        .filter(ban::Column::ConversationId.eq(conversation))
                        .filter(ban::Column::UserId.eq(user))
                        .exec(tx)
                        .await?;
                    ban::ActiveModel {
                        conversation_id: Set(conversation.to_owned()),
                        user_id: Set(user.to_owned()),
                        banned_at_ms: Set(now_ms()),
                    }
                    .insert(tx)
                    .await?;
                }
                Ok::<_, DbErr>(removed.rows_affected)
            })
            .await
            .map_err(tx_error)?;
        self.forget_member(conversation, user).await?;
        if removed == 0 {
            return Err(Error::NotFound(format!("member {user} of {conversation}")));
        }
        Ok(pb::Empty {})
    }
}

fn tx_error(error: TxError<DbErr>) -> Error {
    match error {
        TxError::Rollback(e) if is_unique_violation(&e) => {
            Error::AlreadyExists("a member of this conversation".to_owned())
        }
        TxError::Rollback(e) => e.into(),
        TxError::Db(e) => e.into(),
    }
}
