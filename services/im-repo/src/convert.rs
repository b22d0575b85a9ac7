//! Rows to wire types.

use gochat_proto::common::{self, ConversationType, Role};

use crate::entity::{conversation, group, member, message, user};

pub(crate) fn user(row: user::Model) -> common::User {
    common::User {
        id: row.id,
        username: row.username,
        nickname: row.nickname,
        email: row.email,
        avatar: row.avatar,
        created_at_ms: row.created_at_ms,
    }
}

pub(crate) fn conversation(row: conversation::Model) -> common::Conversation {
    common::Conversation {
        id: row.id,
        r#type: ConversationType::try_from(row.kind).map_or(0, i32::from),
        name: row.name,
        group_id: row.group_id.unwrap_or_default(),
        created_at_ms: row.created_at_ms,
    }
}

pub(crate) fn member(row: member::Model) -> common::Member {
    common::Member {
        conversation_id: row.conversation_id,
        user_id: row.user_id,
        role: Role::try_from(row.role).map_or(0, i32::from),
        read_seq: row.read_seq,
        muted: row.muted,
        pinned: row.pinned,
        joined_at_ms: row.joined_at_ms,
        name: row.name,
        joined_seq: row.joined_seq,
    }
}

pub(crate) fn group(row: group::Model, member_count: usize) -> common::Group {
    common::Group {
        id: row.id,
        conversation_id: row.conversation_id,
        name: row.name,
        description: row.description,
        owner_id: row.owner_id,
        max_members: row.max_members,
        member_count: i32::try_from(member_count).unwrap_or(i32::MAX),
        created_at_ms: row.created_at_ms,
        join_mode: row.join_mode,
        history_visible: row.history_visible,
    }
}

pub(crate) fn message(row: message::Model) -> common::Message {
    common::Message {
        message_id: row.id,
        conversation_id: row.conversation_id,
        seq: row.seq,
        from_user_id: row.from_user_id,
        content: row.content,
        message_type: row.message_type,
        client_msg_id: row.client_msg_id,
        created_at_ms: row.created_at_ms,
    }
}
