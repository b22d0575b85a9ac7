//! Conversations: the single chat of a pair, the caller's list, per-user settings.

use axum::extract::State;
use gochat_proto::logic::{self as pb, UserRef};
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, ok};
use crate::{
    ApiError, Gateway,
    error::{ErrorBody, code::NOT_FOUND},
    extract::{Body, Caller, Segments},
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

/// The caller's conversations as the contract lists them.
async fn listed(gw: &Gateway, user_id: String) -> Result<Vec<ConversationJson>, ApiError> {
    let views = gw
        .logic()
        .list_conversations(Request::new(UserRef { user_id }));
    let views = views.await?.into_inner().conversations;
    Ok(views.into_iter().map(ConversationJson::from).collect())
}

/// The caller's conversations, pinned first, then by latest message.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    security(("bearer" = [])),
    responses((status = 200, description = "The conversations", body = ConversationsBody)))]
pub(crate) async fn list(State(gw): State<Gateway>, caller: Caller) -> Answer {
    ok(ConversationsBody {
        conversations: listed(&gw, caller.user_id).await?,
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
    let conversation = listed(&gw, caller.user_id)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::new(NOT_FOUND, format!("conversation {id} is not listed")))?;
    ok(ConversationBody { conversation })
}
