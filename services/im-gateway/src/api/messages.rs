//! Messages: send, history, unread counts, read pointers.

use axum::extract::State;
use gochat_proto::{
    logic::{self as pb, MarkReadRequest, SendMessageRequest},
    repo::UnreadRequest,
};
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, conversations::ListQuery, no_content, ok, text};
use crate::{
    ApiError, Gateway,
    error::ErrorBody,
    extract::{Body, Caller, Params},
    views::{AckJson, HistoryJson, MessageJson, UnreadBody, UnreadJson},
};

/// A message to send: to `conversation_id`, or to the single chat with `to_user_id`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct SendBody {
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    to_user_id: String,
    /// At most 4 KiB (configurable).
    content: String,
    /// `text` (the default), `image`, `file` or `system`.
    #[serde(default = "text")]
    message_type: String,
    /// The client's id of the message, 1 to 64 bytes: a resend gets the first answer.
    client_msg_id: String,
}

/// Sends a message; the answer comes once it is stored.
#[utoipa::path(post, path = "/api/v1/messages/send", tag = "messages", security(("bearer" = [])),
    request_body = SendBody,
    responses(
        (status = 200, description = "Stored (or stored before, for a resend)", body = AckJson),
        (status = 403, description = "Not a member (1005)", body = ErrorBody),
        (status = 404, description = "No such conversation or user (1003)", body = ErrorBody),
    ))]
pub(crate) async fn send(
    State(gw): State<Gateway>,
    caller: Caller,
    Body(b): Body<SendBody>,
) -> Answer {
    if b.conversation_id.is_empty() == b.to_user_id.is_empty() {
        return Err(ApiError::invalid(
            "give conversation_id or to_user_id (one of them)",
        ));
    }
    let ack = gw.logic().send_message(Request::new(SendMessageRequest {
        user_id: caller.user_id,
        conversation_id: b.conversation_id,
        to_user_id: b.to_user_id,
        content: b.content,
        message_type: b.message_type,
        client_msg_id: b.client_msg_id,
        gateway_id: String::new(),
    }));
    ok(AckJson::from(ack.await?.into_inner()))
}

/// The default history page.
const PAGE: i32 = 50;

/// Which page of history.
#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    conversation_id: String,
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<i32>,
}

/// A page of a conversation's history, ordered by seq (members only; everyone for `world`).
#[utoipa::path(get, path = "/api/v1/messages/history", tag = "messages", security(("bearer" = [])),
    params(
        ("conversation_id" = String, Query, description = "The conversation (`world` for the world channel)"),
        ("before_seq" = Option<i64>, Query, description = "The newest messages below this seq"),
        ("after_seq" = Option<i64>, Query, description = "The oldest messages above this seq (to fill a gap)"),
        ("limit" = Option<i32>, Query, description = "1 to 100; default 50"),
    ),
    responses(
        (status = 200, description = "The page", body = HistoryJson),
        (status = 403, description = "Not a member (1005)", body = ErrorBody),
        (status = 404, description = "No such conversation (1003)", body = ErrorBody),
    ))]
pub(crate) async fn history(
    State(gw): State<Gateway>,
    caller: Caller,
    Params(q): Params<HistoryQuery>,
) -> Answer {
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=im_logic::MAX_HISTORY).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be 1 to {}",
            im_logic::MAX_HISTORY
        )));
    }
    let page = gw.logic().history(Request::new(pb::HistoryRequest {
        user_id: caller.user_id,
        conversation_id: q.conversation_id,
        before_seq: q.before_seq,
        after_seq: q.after_seq,
        limit,
    }));
    let page = page.await?.into_inner();
    ok(HistoryJson {
        messages: page.messages.into_iter().map(MessageJson::from).collect(),
        has_more: page.has_more,
    })
}

/// Unread counts of the caller's conversations, a page at a time (by conversation id), and
/// the total over all of them.
#[utoipa::path(get, path = "/api/v1/messages/unread", tag = "messages", security(("bearer" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Where the page starts: the `next_cursor` of the page before (opaque); none for the first page"),
        ("limit" = Option<i32>, Query, description = "1 to 200; default 50"),
    ),
    responses(
        (status = 200, description = "A page of the counts, and the total over every conversation", body = UnreadBody),
        (status = 400, description = "A limit over 200 or a malformed cursor (1001)", body = ErrorBody),
    ))]
pub(crate) async fn unread(
    State(gw): State<Gateway>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Answer {
    let unread = gw.logic().unread(Request::new(UnreadRequest {
        user_id: caller.user_id,
        limit: q.limit()?,
        cursor: q.cursor,
    }));
    let unread = unread.await?.into_inner();
    ok(UnreadBody {
        total: unread.total,
        conversations: unread
            .conversations
            .into_iter()
            .map(UnreadJson::from)
            .collect(),
        next_cursor: Some(unread.next_cursor).filter(|c| !c.is_empty()),
    })
}

/// A read pointer.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ReadBody {
    conversation_id: String,
    /// Read up to this seq; a lower one than before changes nothing.
    seq: i64,
}

/// Moves the caller's read pointer forward; the peer and the caller's other devices get a
/// read receipt.
#[utoipa::path(post, path = "/api/v1/messages/read", tag = "messages", security(("bearer" = [])),
    request_body = ReadBody,
    responses(
        (status = 204, description = "Moved (or already further)"),
        (status = 403, description = "Not a member (1005)", body = ErrorBody),
    ))]
pub(crate) async fn read(
    State(gw): State<Gateway>,
    caller: Caller,
    Body(b): Body<ReadBody>,
) -> Answer {
    let marked = gw.logic().mark_read(Request::new(MarkReadRequest {
        user_id: caller.user_id,
        conversation_id: b.conversation_id,
        seq: b.seq,
        connection_id: String::new(),
    }));
    marked.await?;
    no_content()
}
