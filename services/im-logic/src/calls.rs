//! The calls besides auth and sending: profiles, conversations, groups, history, read
//! pointers — each checking who may do it before asking the repository.

use gochat_proto::{
    common::{Conversation, ConversationType, Group, Member, Role, User},
    events::{ReadFrame, downstream},
    logic as pb,
    repo::{
        self as repo_pb, AddMembersRequest, ConversationViews, Empty, GetConversationRequest,
        GetGroupRequest, GetMemberRequest, GetMessagesRequest, GetOrCreateSingleRequest,
        GetUserRequest, ListConversationsRequest, ListMembersRequest, MessagePage,
        RemoveMemberRequest, SetReadSeqRequest, UnreadRequest, UnreadResponse, UpdateMemberRequest,
        UpdateUserRequest,
    },
};
use tonic::Request;

use crate::{Error, Logic};

/// A group only an admin adds members to.
const JOIN_INVITE: &str = "invite";

/// The most messages one history page holds.
pub const MAX_HISTORY: i32 = 100;

/// The most conversations one page of the conversation or unread list holds.
pub const MAX_LIST: i32 = 200;

/// The rate-limit rule for being put into groups by someone else (created with, or added
/// to), keyed by the added user's id: nobody can be put into groups without bound.
pub const GROUP_ADD_RULE: &str = "group_adds";

/// A list page size: 0 (the default) to [`MAX_LIST`].
fn list_limit(limit: i32) -> Result<(), Error> {
    if (0..=MAX_LIST).contains(&limit) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "limit must be 1 to {MAX_LIST}"
        )))
    }
}

impl Logic {
    /// The caller's own profile.
    ///
    /// # Errors
    /// The repository failing.
    pub async fn profile(&self, user_id: &str) -> Result<User, Error> {
        let user = self.deps.repo.get_user(Request::new(GetUserRequest {
            user_id: user_id.to_owned(),
        }));
        Ok(user.await?.into_inner())
    }

    /// Changes the caller's nickname or avatar.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty or overlong nickname or avatar.
    pub async fn update_profile(&self, req: pb::UpdateProfileRequest) -> Result<User, Error> {
        if req
            .nickname
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 64)
        {
            return Err(Error::InvalidArgument(
                "nickname must be 1 to 64 characters".to_owned(),
            ));
        }
        if req
            .avatar
            .as_deref()
            .is_some_and(|a| a.len() > crate::account::MAX_AVATAR)
        {
            return Err(Error::InvalidArgument(format!(
                "avatar is longer than {} bytes",
                crate::account::MAX_AVATAR
            )));
        }
        let updated = self.deps.repo.update_user(Request::new(UpdateUserRequest {
            user_id: req.user_id,
            nickname: req.nickname,
            avatar: req.avatar,
        }));
        Ok(updated.await?.into_inner())
    }

    /// A user's public profile (the gateway leaves the email out).
    ///
    /// # Errors
    /// The repository's `NotFound`.
    pub async fn user(&self, req: pb::GetUserRequest) -> Result<User, Error> {
        self.profile(&req.target_user_id).await
    }

    /// The single chat of the caller and a peer: the same conversation every time.
    ///
    /// # Errors
    /// The repository's `NotFound` for an unknown peer, `InvalidArgument` for oneself.
    pub async fn create_conversation(
        &self,
        req: pb::CreateConversationRequest,
    ) -> Result<Conversation, Error> {
        let single = self
            .deps
            .repo
            .get_or_create_single(Request::new(GetOrCreateSingleRequest {
                user_id: req.user_id,
                peer_user_id: req.peer_user_id,
            }));
        Ok(single.await?.into_inner())
    }

    /// The first page of the caller's conversations, pinned first, then by latest message.
    ///
    /// # Errors
    /// The repository failing.
    pub async fn conversations(&self, user_id: &str) -> Result<ConversationViews, Error> {
        self.conversation_page(ListConversationsRequest {
            user_id: user_id.to_owned(),
            ..Default::default()
        })
        .await
    }

    /// A page of the caller's conversations (`req.user_id`), pinned first, then by latest
    /// message, from `req.cursor` (a page's `next_cursor`), at most `req.limit` (0: 50).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a limit above [`MAX_LIST`] or a malformed cursor.
    pub async fn conversation_page(
        &self,
        req: ListConversationsRequest,
    ) -> Result<ConversationViews, Error> {
        list_limit(req.limit)?;
        let views = self.deps.repo.list_conversations(Request::new(req));
        Ok(views.await?.into_inner())
    }

    /// The caller's own settings of a conversation: their name for it, muted, pinned.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-member; [`Error::InvalidArgument`] for a name over 64
    /// characters.
    pub async fn update_conversation(
        &self,
        req: pb::UpdateConversationRequest,
    ) -> Result<Member, Error> {
        if req.name.as_deref().is_some_and(|n| n.chars().count() > 64) {
            return Err(Error::InvalidArgument(
                "name is longer than 64 characters".to_owned(),
            ));
        }
        self.membership(&req.conversation_id, &req.user_id).await?;
        let updated = self
            .deps
            .repo
            .update_member(Request::new(UpdateMemberRequest {
                conversation_id: req.conversation_id,
                user_id: req.user_id,
                muted: req.muted,
                pinned: req.pinned,
                name: req.name,
            }));
        Ok(updated.await?.into_inner())
    }

    /// A group owned by the caller, with the given members.
    ///
    /// # Errors
    /// The repository's refusals (unknown members, too many).
    pub async fn create_group(&self, req: pb::CreateGroupRequest) -> Result<Group, Error> {
        if req.name.trim().is_empty() || req.name.chars().count() > 64 {
            return Err(Error::InvalidArgument(
                "name must be 1 to 64 characters".to_owned(),
            ));
        }
        let description = crate::account::bounded(
            "description",
            &req.description,
            crate::account::MAX_DESCRIPTION,
        )?;
        self.limit_group_adds(&req.user_id, &req.member_ids).await?;
        let group = self
            .deps
            .repo
            .create_group(Request::new(repo_pb::CreateGroupRequest {
                name: req.name,
                description,
                owner_id: req.user_id,
                member_ids: req.member_ids,
                max_members: 0,
                join_mode: req.join_mode,
                history_visible: req.history_visible,
            }));
        Ok(group.await?.into_inner())
    }

    /// A group, and its members when the caller is one. An invite-only group is not found
    /// by anyone outside it (ids cannot be probed for private groups).
    ///
    /// # Errors
    /// The repository's `NotFound`.
    pub async fn group(&self, req: pb::GroupRequest) -> Result<pb::GroupInfo, Error> {
        let group = self.group_of(&req.group_id).await?;
        let member = self
            .membership(&group.conversation_id, &req.user_id)
            .await
            .is_ok();
        if !member && group.join_mode == JOIN_INVITE {
            return Err(Error::Repo(tonic::Status::not_found(format!(
                "group {}",
                req.group_id
            ))));
        }
        let members = if member {
            let listed = self
                .deps
                .repo
                .list_members(Request::new(ListMembersRequest {
                    conversation_id: group.conversation_id.clone(),
                }));
            listed.await?.into_inner().members
        } else {
            Vec::new()
        };
        Ok(pb::GroupInfo {
            group: Some(group),
            members,
        })
    }

    /// The caller joins a group (a member already: nothing changes).
    ///
    /// # Errors
    /// The repository's refusals (a full group).
    pub async fn join_group(&self, req: pb::GroupRequest) -> Result<(), Error> {
        let group = self.group_of(&req.group_id).await?;
        if group.join_mode == JOIN_INVITE
            && self
                .membership(&group.conversation_id, &req.user_id)
                .await
                .is_err()
        {
            // Not told apart from an unknown group.
            return Err(Error::Repo(tonic::Status::not_found(format!(
                "group {}",
                req.group_id
            ))));
        }
        self.add(&group, vec![req.user_id], true).await
    }

    /// The caller leaves a group; the owner cannot.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for the owner; the repository's `NotFound` for a non-member.
    pub async fn leave_group(&self, req: pb::GroupRequest) -> Result<(), Error> {
        let group = self.group_of(&req.group_id).await?;
        if group.owner_id == req.user_id {
            return Err(Error::Forbidden(
                "the owner cannot leave the group".to_owned(),
            ));
        }
        self.remove(&group.conversation_id, &req.user_id, false)
            .await
    }

    /// Adds users to a group; owners and admins only.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for other callers; the repository's refusals.
    pub async fn add_group_members(&self, req: pb::AddGroupMembersRequest) -> Result<(), Error> {
        let group = self.group_of(&req.group_id).await?;
        self.require_admin(&group, &req.user_id).await?;
        self.limit_group_adds(&req.user_id, &req.user_ids).await?;
        self.add(&group, req.user_ids, false).await
    }

    /// Removes a member; owners and admins only, and never the owner.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; the repository's `NotFound`.
    pub async fn remove_group_member(
        &self,
        req: pb::RemoveGroupMemberRequest,
    ) -> Result<(), Error> {
        let group = self.group_of(&req.group_id).await?;
        self.require_admin(&group, &req.user_id).await?;
        if req.member_id == group.owner_id {
            return Err(Error::Forbidden("the owner cannot be removed".to_owned()));
        }
        // Removal bans: the member cannot join again until an admin adds them.
        self.remove(&group.conversation_id, &req.member_id, true)
            .await
    }

    /// A page of a conversation's messages by seq; members only (everyone for the world).
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidArgument`] for a limit above 100.
    pub async fn history(&self, req: pb::HistoryRequest) -> Result<MessagePage, Error> {
        if req.limit > MAX_HISTORY {
            return Err(Error::InvalidArgument(format!(
                "limit must be at most {MAX_HISTORY}"
            )));
        }
        let from_seq = self.readable(&req.conversation_id, &req.user_id).await?;
        let page = self
            .deps
            .repo
            .get_messages(Request::new(GetMessagesRequest {
                conversation_id: req.conversation_id,
                before_seq: req.before_seq,
                after_seq: req.after_seq,
                limit: req.limit,
                from_seq,
            }));
        Ok(page.await?.into_inner())
    }

    /// Unread counts of the first page of the caller's conversations, and the total over all.
    ///
    /// # Errors
    /// The repository failing.
    pub async fn unread(&self, user_id: &str) -> Result<UnreadResponse, Error> {
        self.unread_page(UnreadRequest {
            user_id: user_id.to_owned(),
            ..Default::default()
        })
        .await
    }

    /// A page of the caller's unread counts (by conversation id) from `req.cursor`, at most
    /// `req.limit` (0: 50), and the total over all their conversations.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a limit above [`MAX_LIST`] or a malformed cursor.
    pub async fn unread_page(&self, req: UnreadRequest) -> Result<UnreadResponse, Error> {
        list_limit(req.limit)?;
        let unread = self.deps.repo.unread(Request::new(req));
        Ok(unread.await?.into_inner())
    }

    /// Moves the caller's read pointer forward (never back) and sends a read receipt to the
    /// reader's other devices and, in a single chat, to the peer.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a non-member.
    pub async fn mark_read(&self, req: pb::MarkReadRequest) -> Result<Member, Error> {
        self.membership(&req.conversation_id, &req.user_id).await?;
        let member = self.deps.repo.set_read_seq(Request::new(SetReadSeqRequest {
            conversation_id: req.conversation_id.clone(),
            user_id: req.user_id.clone(),
            seq: req.seq,
        }));
        let member = member.await?.into_inner();
        let conversation = self
            .deps
            .repo
            .get_conversation(Request::new(GetConversationRequest {
                conversation_id: req.conversation_id.clone(),
            }));
        let conversation = conversation.await?.into_inner();
        let mut to = vec![req.user_id.clone()];
        if conversation.r#type == i32::from(ConversationType::Single) {
            let members = self
                .deps
                .repo
                .list_members(Request::new(ListMembersRequest {
                    conversation_id: req.conversation_id.clone(),
                }));
            to.extend(
                members
                    .await?
                    .into_inner()
                    .members
                    .into_iter()
                    .map(|m| m.user_id)
                    .filter(|user| *user != req.user_id),
            );
        }
        let receipt = downstream::Frame::Read(ReadFrame {
            conversation_id: req.conversation_id.clone(),
            user_id: req.user_id,
            seq: member.read_seq,
            except_connection_id: req.connection_id,
        });
        // The pointer moved; a receipt that cannot go out now is not worth failing the call.
        if let Err(e) = self.router.notify(to, receipt, &req.conversation_id).await {
            gochat_clog::warn!(self.deps.log, error = %e, "sending a read receipt failed");
        }
        Ok(member)
    }

    /// Which gateways each user is connected to (users connected nowhere are left out).
    ///
    /// # Errors
    /// The cache failing.
    pub async fn presence(&self, req: pb::PresenceRequest) -> Result<pb::PresenceResponse, Error> {
        let online = self.router.presence(&req.user_ids).await?;
        Ok(pb::PresenceResponse {
            online: online
                .into_iter()
                .map(|(user, gateway_ids)| (user, pb::Gateways { gateway_ids }))
                .collect(),
        })
    }

    async fn group_of(&self, group_id: &str) -> Result<Group, Error> {
        let group = self.deps.repo.get_group(Request::new(GetGroupRequest {
            group_id: group_id.to_owned(),
        }));
        Ok(group.await?.into_inner())
    }

    async fn membership(&self, conversation_id: &str, user_id: &str) -> Result<Member, Error> {
        let member = self.deps.repo.get_member(Request::new(GetMemberRequest {
            conversation_id: conversation_id.to_owned(),
            user_id: user_id.to_owned(),
        }));
        match member.await.map_err(Error::from) {
            Ok(member) => Ok(member.into_inner()),
            Err(e) if e.is_not_found() => Err(Error::Forbidden(
                "not a member of this conversation".to_owned(),
            )),
            Err(e) => Err(e),
        }
    }

    /// Whether `user_id` may read the conversation, and from which seq on: a group member
    /// without visible history reads what came after they joined.
    async fn readable(&self, conversation_id: &str, user_id: &str) -> Result<i64, Error> {
        let conversation = self
            .deps
            .repo
            .get_conversation(Request::new(GetConversationRequest {
                conversation_id: conversation_id.to_owned(),
            }));
        let conversation = match conversation.await.map_err(Error::from) {
            Ok(found) => found.into_inner(),
            Err(e) if e.is_not_found() => {
                return Err(Error::Forbidden(
                    "not a member of this conversation".to_owned(),
                ));
            }
            Err(e) => return Err(e),
        };
        if conversation.r#type == i32::from(ConversationType::World) {
            return Ok(0);
        }
        let member = self.membership(conversation_id, user_id).await?;
        if conversation.r#type != i32::from(ConversationType::Group) {
            return Ok(0);
        }
        let group = self.group_of(&conversation.group_id).await?;
        Ok(if group.history_visible {
            0
        } else {
            member.joined_seq
        })
    }

    /// Takes a [`GROUP_ADD_RULE`] token for each user `by` puts into a group (once each,
    /// never for `by` themselves): refused as a whole when any of them is over the limit.
    async fn limit_group_adds(&self, by: &str, user_ids: &[String]) -> Result<(), Error> {
        let mut added: Vec<&str> = user_ids
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty() && *id != by)
            .collect();
        added.sort_unstable();
        added.dedup();
        for user in added {
            self.limit(GROUP_ADD_RULE, user).await?;
        }
        Ok(())
    }

    async fn require_admin(&self, group: &Group, user_id: &str) -> Result<(), Error> {
        let member = self.membership(&group.conversation_id, user_id).await?;
        if member.role == i32::from(Role::Owner) || member.role == i32::from(Role::Admin) {
            Ok(())
        } else {
            Err(Error::Forbidden("owners and admins only".to_owned()))
        }
    }

    async fn add(
        &self,
        group: &Group,
        user_ids: Vec<String>,
        self_join: bool,
    ) -> Result<(), Error> {
        let added = self.deps.repo.add_members(Request::new(AddMembersRequest {
            conversation_id: group.conversation_id.clone(),
            user_ids,
            role: Role::Member.into(),
            self_join,
        }));
        added.await?;
        Ok(())
    }

    async fn remove(&self, conversation_id: &str, user_id: &str, ban: bool) -> Result<(), Error> {
        let removed = self
            .deps
            .repo
            .remove_member(Request::new(RemoveMemberRequest {
                conversation_id: conversation_id.to_owned(),
                user_id: user_id.to_owned(),
                ban,
            }));
        let Empty {} = removed.await?.into_inner();
        Ok(())
    }
}
