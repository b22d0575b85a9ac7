//! Conversations: the single chat of a pair, the caller's list, per-user settings.

use axum::extract::State;
use gochat_proto::{logic as pb, repo::ListConversationsRequest};
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, ok};
use crate::{
    ApiError, Gateway,
    error::{ErrorBody, code::NOT_FOUND},
    extract::{Body, Caller, Params, Segments},
    views::{ConversationBody, ConversationJson, ConversationsBody},
};

/// The peer of a single chat.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateConversationBody {
    peer_user_id: String,
}

/// The single chat of the caller and a peer: the same conversation every time.
#[utoipa::path(post, path = "/api/v1/conversations/create", tag = "conversations",
    security(("bearer" = [])), request_body = CreateConversationBody,
    responses(
        (status = 200, description = "The pair's conversation", body = ConversationBody),
        (status = 404, description = "No such peer (1003)", body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(gw): State<Gateway>,
    caller: Caller,
    Body(b): Body<CreateConversationBody>,
) -> Answer {
    let conversation =
        gw.logic()
            .create_conversation(Request::new(pb::CreateConversationRequest {
                user_id: caller.user_id,
                peer_user_id: b.peer_user_id,
            }));
    let conversation = ConversationJson::from(conversation.await?.into_inner());
    ok(ConversationBody { conversation })
}

/// The default page of the conversation and unread lists.
pub(crate) const LIST_PAGE: i32 = 50;

/// Which page of a list: after `cursor` (a page's `next_cursor`), at most `limit`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub(crate) cursor: String,
    pub(crate) limit: Option<i32>,
}

impl ListQuery {
    /// The page size asked for (the default when none), 1 to `im_logic::MAX_LIST`.
    pub(crate) fn limit(&self) -> Result<i32, ApiError> {
        let limit = self.limit.unwrap_or(LIST_PAGE);
        if (1..=im_logic::MAX_LIST).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::invalid(format!(
                "limit must be 1 to {}",
                im_logic::MAX_LIST
            )))
        }
    }
}

/// A page of the caller's conversations as the contract lists them, and the next cursor.
async fn listed(
    gw: &Gateway,
    req: ListConversationsRequest,
) -> Result<(Vec<ConversationJson>, String), ApiError> {
    let views = gw.logic().list_conversations(Request::new(req));
    let views = views.await?.into_inner();
    let page = views.conversations.into_iter().map(ConversationJson::from);
    Ok((page.collect(), views.next_cursor))
}

/// The caller's conversations, pinned first, then by latest message (then by id), a page at
/// a time.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    security(("bearer" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Where the page starts: the `next_cursor` of the page before (opaque); none for the first page"),
        ("limit" = Option<i32>, Query, description = "1 to 200; default 50"),
    ),
    responses(
        (status = 200, description = "A page of the conversations", body = ConversationsBody),
        (status = 400, description = "A limit over 200 or a malformed cursor (1001)", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(gw): State<Gateway>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Answer {
    let (conversations, next_cursor) = listed(
        &gw,
        ListConversationsRequest {
            user_id: caller.user_id,
            limit: q.limit()?,
            cursor: q.cursor,
            ..Default::default()
        },
    )
    .await?;
    ok(ConversationsBody {
        conversations,
        next_cursor: Some(next_cursor).filter(|c| !c.is_empty()),
    })
}

/// The caller's own settings of a conversation.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ConversationSettings {
    /// The caller's own name for it, at most 64 characters.
    name: Option<String>,
    muted: Option<bool>,
    pinned: Option<bool>,
}

/// Changes the caller's settings of a conversation (members only).
#[utoipa::path(put, path = "/api/v1/conversations/{id}", tag = "conversations",
    security(("bearer" = [])), request_body = ConversationSettings,
    params(("id" = String, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation as the caller sees it", body = ConversationBody),
        (status = 403, description = "Not a member (1005)", body = ErrorBody),
        (status = 404, description = "No such conversation (1003)", body = ErrorBody),
    ))]
pub(crate) async fn update(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
    Body(b): Body<ConversationSettings>,
) -> Answer {
    let updated = gw
        .logic()
        .update_conversation(Request::new(pb::UpdateConversationRequest {
            user_id: caller.user_id.clone(),
            conversation_id: id.clone(),
            name: b.name,
            muted: b.muted,
            pinned: b.pinned,
        }));
    updated.await?;
    let only = ListConversationsRequest {
        user_id: caller.user_id,
        conversation_ids: vec![id.clone()],
        ..Default::default()
    };
    let conversation = listed(&gw, only)
        .await?
        .0
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::new(NOT_FOUND, format!("conversation {id} is not listed")))?;
    ok(ConversationBody { conversation })
}
