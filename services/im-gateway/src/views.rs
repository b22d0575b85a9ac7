//! The JSON shapes of CONTRACT.md, made from the protocol's messages. Ids are strings, times
//! RFC 3339 UTC.

use std::time::{Duration, UNIX_EPOCH};

use gochat_proto::{
    common::{Conversation, ConversationType, Group, Member, Message, Role, User},
    logic::Ack,
    repo::{ConversationView, UnreadConversation},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z).
const LAST_RFC3339_MS: u64 = 253_402_300_799_999;

/// Unix milliseconds as RFC 3339 UTC with milliseconds; times before 1970 or after the year 9999
/// (a corrupt or hostile payload) are clamped, never a panic.
pub(crate) fn time(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0).min(LAST_RFC3339_MS);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A user as its owner sees it.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserJson {
    /// A Snowflake id, as a decimal string.
    id: String,
    username: String,
    nickname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    avatar: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

impl UserJson {
    /// Everything, the email included.
    pub(crate) fn own(user: User) -> Self {
        let (email, created_at) = (user.email.clone(), time(user.created_at_ms));
        Self {
            email: Some(email),
            created_at: Some(created_at),
            ..Self::public(user)
        }
    }

    /// `{id, username, nickname, avatar}`.
    pub(crate) fn public(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            nickname: user.nickname,
            email: None,
            avatar: user.avatar,
            created_at: None,
        }
    }
}

/// A stored message.
#[derive(Serialize, ToSchema)]
pub(crate) struct MessageJson {
    message_id: String,
    conversation_id: String,
    seq: i64,
    from_user_id: String,
    content: String,
    message_type: String,
    client_msg_id: String,
    created_at: String,
}

impl From<Message> for MessageJson {
    fn from(m: Message) -> Self {
        Self {
            message_id: m.message_id,
            conversation_id: m.conversation_id,
            seq: m.seq,
            from_user_id: m.from_user_id,
            content: m.content,
            message_type: m.message_type,
            client_msg_id: m.client_msg_id,
            created_at: time(m.created_at_ms),
        }
    }
}

/// A send's answer (HTTP) or an ack frame's data (WebSocket).
#[derive(Serialize, ToSchema)]
pub(crate) struct AckJson {
    client_msg_id: String,
    message_id: String,
    conversation_id: String,
    seq: i64,
    created_at: String,
}

impl From<Ack> for AckJson {
    fn from(a: Ack) -> Self {
        Self {
            client_msg_id: a.client_msg_id,
            message_id: a.message_id,
            conversation_id: a.conversation_id,
            seq: a.seq,
            created_at: time(a.created_at_ms),
        }
    }
}

fn kind(t: i32) -> &'static str {
    match ConversationType::try_from(t) {
        Ok(ConversationType::Single) => "single",
        Ok(ConversationType::Group) => "group",
        Ok(ConversationType::World) => "world",
        _ => "unknown",
    }
}

fn role(r: i32) -> &'static str {
    match Role::try_from(r) {
        Ok(Role::Owner) => "owner",
        Ok(Role::Admin) => "admin",
        _ => "member",
    }
}

/// A conversation; the per-user fields when seen from a member's list.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationJson {
    pub(crate) id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group_id: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_message: Option<MessageJson>,
    last_seq: i64,
    read_seq: i64,
    unread: i64,
    muted: bool,
    pinned: bool,
}

impl From<Conversation> for ConversationJson {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id,
            kind: kind(c.r#type),
            name: c.name,
            group_id: c.group_id,
            created_at: time(c.created_at_ms),
            last_message: None,
            last_seq: 0,
            read_seq: 0,
            unread: 0,
            muted: false,
            pinned: false,
        }
    }
}

impl From<ConversationView> for ConversationJson {
    fn from(v: ConversationView) -> Self {
        let mut json = Self::from(v.conversation.unwrap_or_default());
        let member = v.member.unwrap_or_default();
        if !member.name.is_empty() {
            json.name = member.name;
        }
        json.last_message = v.last_message.map(MessageJson::from);
        json.last_seq = v.last_seq;
        json.read_seq = member.read_seq;
        json.unread = (v.last_seq - member.read_seq).max(0);
        json.muted = member.muted;
        json.pinned = member.pinned;
        json
    }
}

/// A group.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupJson {
    id: String,
    conversation_id: String,
    name: String,
    description: String,
    owner_id: String,
    member_count: i32,
    max_members: i32,
    created_at: String,
    /// `open` (anyone may join) or `invite` (only an admin adds members).
    join_mode: String,
    /// Whether members read the history from before they joined.
    history_visible: bool,
}

impl From<Group> for GroupJson {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            conversation_id: g.conversation_id,
            name: g.name,
            description: g.description,
            owner_id: g.owner_id,
            member_count: g.member_count,
            max_members: g.max_members,
            created_at: time(g.created_at_ms),
            join_mode: if g.join_mode.is_empty() {
                "open".to_owned()
            } else {
                g.join_mode
            },
            history_visible: g.history_visible,
        }
    }
}

/// A member of a group.
#[derive(Serialize, ToSchema)]
pub(crate) struct MemberJson {
    user_id: String,
    role: &'static str,
    joined_at: String,
}

impl From<Member> for MemberJson {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id,
            role: role(m.role),
            joined_at: time(m.joined_at_ms),
        }
    }
}

/// One conversation's unread count.
#[derive(Serialize, ToSchema)]
pub(crate) struct UnreadJson {
    conversation_id: String,
    unread: i64,
    last_seq: i64,
    read_seq: i64,
}

impl From<UnreadConversation> for UnreadJson {
    fn from(u: UnreadConversation) -> Self {
        Self {
            conversation_id: u.conversation_id,
            unread: u.unread,
            last_seq: u.last_seq,
            read_seq: u.read_seq,
        }
    }
}

/// `{user}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserBody {
    pub(crate) user: UserJson,
}

/// A token pair and its user.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokensJson {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    /// Seconds until the access token expires.
    pub(crate) expires_in: i64,
    pub(crate) user: Option<UserJson>,
}

/// `{conversation}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationBody {
    pub(crate) conversation: ConversationJson,
}

/// The caller's conversations.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationsBody {
    pub(crate) conversations: Vec<ConversationJson>,
    /// Where the next page starts (`?cursor=`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

/// A group just created and its conversation.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupCreated {
    pub(crate) group: GroupJson,
    pub(crate) conversation_id: String,
}

/// A group, and its members when the caller is one of them.
#[derive(Serialize, ToSchema)]
pub(crate) struct GroupBody {
    pub(crate) group: Option<GroupJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) members: Option<Vec<MemberJson>>,
}

/// A page of history, ordered by seq.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryJson {
    pub(crate) messages: Vec<MessageJson>,
    pub(crate) has_more: bool,
}

/// Unread counts.
#[derive(Serialize, ToSchema)]
pub(crate) struct UnreadBody {
    /// Over every conversation of the caller's, not only this page.
    pub(crate) total: i64,
    pub(crate) conversations: Vec<UnreadJson>,
    /// Where the next page starts (`?cursor=`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_the_year_9999_or_before_1970_are_clamped_not_a_panic() {
        // Found by fuzzing the downstream payload decoder.
        assert_eq!(time(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(time(3_565_158_400_266_692_731), "9999-12-31T23:59:59.999Z");
        assert_eq!(time(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(time(-5), "1970-01-01T00:00:00.000Z");
    }
}
