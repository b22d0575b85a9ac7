//! The HTTP API under `/api/v1` (CONTRACT.md): each handler checks the request's shape and
//! asks im-logic.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use gochat_proto::{
    events::{Downstream, KickFrame, downstream::Frame},
    logic::{
        self as pb, LoginRequest, LogoutRequest, MarkReadRequest, PresenceRequest, RefreshRequest,
        RegisterRequest, SendMessageRequest, UserRef,
    },
    prost::Message as _,
};
use serde::Deserialize;
use serde_json::json;
use tonic::Request;

use crate::{
    ApiError, Gateway,
    error::code::NOT_FOUND,
    extract::{Body, Caller, Params, Segments},
    registry::reason,
    views::{AckJson, ConversationJson, GroupJson, MemberJson, MessageJson, UnreadJson, UserJson},
};

type Answer = Result<Response, ApiError>;

/// The routes, relative to `/api/v1`.
pub(crate) fn routes() -> Router<Gateway> {
    Router::new()
        .route("/users/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/users/profile", get(profile).put(update_profile))
        .route("/users/{id}", get(user))
        .route("/conversations/create", post(create_conversation))
        .route("/conversations", get(conversations))
        .route("/conversations/{id}", put(update_conversation))
        .route("/groups/create", post(create_group))
        .route("/groups/{id}", get(group))
        .route("/groups/{id}/join", post(join_group))
        .route("/groups/{id}/leave", post(leave_group))
        .route("/groups/{id}/members", post(add_members))
        .route("/groups/{id}/members/{user_id}", delete(remove_member))
        .route("/messages/send", post(send))
        .route("/messages/history", get(history))
        .route("/messages/unread", get(unread))
        .route("/messages/read", post(read))
}

fn ok(body: serde_json::Value) -> Answer {
    Ok(Json(body).into_response())
}

fn created(body: serde_json::Value) -> Answer {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    email: String,
}

async fn register(State(gw): State<Gateway>, Body(b): Body<RegisterBody>) -> Answer {
    let user = gw.logic().register(Request::new(RegisterRequest {
        username: b.username,
        password: b.password,
        nickname: b.nickname,
        email: b.email,
    }));
    created(json!({ "user": UserJson::own(user.await?.into_inner()) }))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

fn token_pair(pair: pb::TokenPair) -> Answer {
    ok(json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in_secs,
        "user": pair.user.map(UserJson::own),
    }))
}

async fn login(State(gw): State<Gateway>, Body(b): Body<LoginBody>) -> Answer {
    let pair = gw.logic().login(Request::new(LoginRequest {
        username: b.username,
        password: b.password,
    }));
    token_pair(pair.await?.into_inner())
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(gw): State<Gateway>, Body(b): Body<RefreshBody>) -> Answer {
    let pair = gw.logic().refresh(Request::new(RefreshRequest {
        refresh_token: b.refresh_token,
    }));
    token_pair(pair.await?.into_inner())
}

/// Ends the session, then closes its sockets on every gateway that holds one.
async fn logout(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let done = gw.logic().logout(Request::new(LogoutRequest {
        access_token: caller.token,
    }));
    done.await?;
    let online = gw.logic().presence(Request::new(PresenceRequest {
        user_ids: vec![caller.user_id.clone()],
    }));
    let gateways = match online.await {
        Ok(answer) => answer
            .into_inner()
            .online
            .remove(&caller.user_id)
            .map(|g| g.gateway_ids)
            .unwrap_or_default(),
        Err(status) => {
            gw.inner.deps.log.warn(format!(
                "im-gateway: sockets of a logged-out session may stay open: {}",
                status.message()
            ));
            Vec::new()
        }
    };
    let kick = Downstream {
        user_ids: vec![caller.user_id.clone()],
        frame: Some(Frame::Kick(KickFrame {
            reason: reason::LOGOUT.to_owned(),
            token_id: caller.session_id,
        })),
    }
    .encode_to_vec();
    for gateway in gateways {
        let message = gochat_mq::Message::new(gw.inner.topics.downstream(&gateway), kick.clone())
            .key(caller.user_id.clone());
        if let Err(e) = gw.inner.producer.send(message).await {
            gw.inner.deps.log.warn(format!(
                "im-gateway: the logout kick to {gateway} was not sent: {e}"
            ));
        }
    }
    no_content()
}

async fn profile(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let user = gw.logic().get_profile(Request::new(UserRef {
        user_id: caller.user_id,
    }));
    ok(json!({ "user": UserJson::own(user.await?.into_inner()) }))
}

#[derive(Deserialize)]
struct ProfileBody {
    nickname: Option<String>,
    avatar: Option<String>,
}

async fn update_profile(
    State(gw): State<Gateway>,
    caller: Caller,
    Body(b): Body<ProfileBody>,
) -> Answer {
    let user = gw
        .logic()
        .update_profile(Request::new(pb::UpdateProfileRequest {
            user_id: caller.user_id,
            nickname: b.nickname,
            avatar: b.avatar,
        }));
    ok(json!({ "user": UserJson::own(user.await?.into_inner()) }))
}

async fn user(State(gw): State<Gateway>, caller: Caller, Segments(id): Segments<String>) -> Answer {
    let user = gw.logic().get_user(Request::new(pb::GetUserRequest {
        user_id: caller.user_id,
        target_user_id: id,
    }));
    ok(json!(UserJson::public(user.await?.into_inner())))
}

#[derive(Deserialize)]
struct CreateConversationBody {
    peer_user_id: String,
}

async fn create_conversation(
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
    ok(json!({ "conversation": conversation }))
}

/// The caller's conversations as the contract lists them.
async fn listed(gw: &Gateway, user_id: String) -> Result<Vec<ConversationJson>, ApiError> {
    let views = gw
        .logic()
        .list_conversations(Request::new(UserRef { user_id }));
    let views = views.await?.into_inner().conversations;
    Ok(views.into_iter().map(ConversationJson::from).collect())
}

async fn conversations(State(gw): State<Gateway>, caller: Caller) -> Answer {
    ok(json!({ "conversations": listed(&gw, caller.user_id).await? }))
}

#[derive(Deserialize)]
struct ConversationSettings {
    name: Option<String>,
    muted: Option<bool>,
    pinned: Option<bool>,
}

async fn update_conversation(
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
    ok(json!({ "conversation": conversation }))
}

#[derive(Deserialize)]
struct CreateGroupBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    member_ids: Vec<String>,
}

async fn create_group(
    State(gw): State<Gateway>,
    caller: Caller,
    Body(b): Body<CreateGroupBody>,
) -> Answer {
    let group = gw
        .logic()
        .create_group(Request::new(pb::CreateGroupRequest {
            user_id: caller.user_id,
            name: b.name,
            description: b.description,
            member_ids: b.member_ids,
        }));
    let group = group.await?.into_inner();
    let conversation_id = group.conversation_id.clone();
    created(json!({ "group": GroupJson::from(group), "conversation_id": conversation_id }))
}

async fn group(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Answer {
    let info = gw.logic().get_group(Request::new(pb::GroupRequest {
        user_id: caller.user_id,
        group_id: id,
    }));
    let info = info.await?.into_inner();
    let mut body = json!({ "group": info.group.map(GroupJson::from) });
    if !info.members.is_empty() {
        let members: Vec<MemberJson> = info.members.into_iter().map(MemberJson::from).collect();
        body["members"] = json!(members);
    }
    ok(body)
}

async fn join_group(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Answer {
    let joined = gw.logic().join_group(Request::new(pb::GroupRequest {
        user_id: caller.user_id,
        group_id: id,
    }));
    joined.await?;
    no_content()
}

async fn leave_group(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Answer {
    let left = gw.logic().leave_group(Request::new(pb::GroupRequest {
        user_id: caller.user_id,
        group_id: id,
    }));
    left.await?;
    no_content()
}

#[derive(Deserialize)]
struct AddMembersBody {
    user_ids: Vec<String>,
}

async fn add_members(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
    Body(b): Body<AddMembersBody>,
) -> Answer {
    if b.user_ids.is_empty() {
        return Err(ApiError::invalid("user_ids is empty"));
    }
    let added = gw
        .logic()
        .add_group_members(Request::new(pb::AddGroupMembersRequest {
            user_id: caller.user_id,
            group_id: id,
            user_ids: b.user_ids,
        }));
    added.await?;
    no_content()
}

async fn remove_member(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments((id, member)): Segments<(String, String)>,
) -> Answer {
    let removed = gw
        .logic()
        .remove_group_member(Request::new(pb::RemoveGroupMemberRequest {
            user_id: caller.user_id,
            group_id: id,
            member_id: member,
        }));
    removed.await?;
    no_content()
}

#[derive(Deserialize)]
struct SendBody {
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    to_user_id: String,
    content: String,
    #[serde(default = "text")]
    message_type: String,
    client_msg_id: String,
}

fn text() -> String {
    "text".to_owned()
}

async fn send(State(gw): State<Gateway>, caller: Caller, Body(b): Body<SendBody>) -> Answer {
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
    ok(json!(AckJson::from(ack.await?.into_inner())))
}

/// The default history page.
const PAGE: i32 = 50;

#[derive(Deserialize)]
struct HistoryQuery {
    conversation_id: String,
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<i32>,
}

async fn history(
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
    let messages: Vec<MessageJson> = page.messages.into_iter().map(MessageJson::from).collect();
    ok(json!({ "messages": messages, "has_more": page.has_more }))
}

async fn unread(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let unread = gw.logic().unread(Request::new(UserRef {
        user_id: caller.user_id,
    }));
    let unread = unread.await?.into_inner();
    let conversations: Vec<UnreadJson> = unread
        .conversations
        .into_iter()
        .map(UnreadJson::from)
        .collect();
    ok(json!({ "total": unread.total, "conversations": conversations }))
}

#[derive(Deserialize)]
struct ReadBody {
    conversation_id: String,
    seq: i64,
}

async fn read(State(gw): State<Gateway>, caller: Caller, Body(b): Body<ReadBody>) -> Answer {
    let marked = gw.logic().mark_read(Request::new(MarkReadRequest {
        user_id: caller.user_id,
        conversation_id: b.conversation_id,
        seq: b.seq,
        connection_id: String::new(),
    }));
    marked.await?;
    no_content()
}
