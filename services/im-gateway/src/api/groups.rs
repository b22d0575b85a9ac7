//! Groups: create, look up, join, leave, add and remove members.

use axum::extract::State;
use gochat_proto::logic as pb;
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, created, no_content, ok};
use crate::{
    ApiError, Gateway,
    error::ErrorBody,
    extract::{Body, Caller, Segments},
    views::{GroupBody, GroupCreated, GroupJson, MemberJson},
};

/// A new group.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateGroupBody {
    /// 1 to 64 characters.
    name: String,
    #[serde(default)]
    description: String,
    /// The first members besides the caller, who owns the group.
    #[serde(default)]
    member_ids: Vec<String>,
    /// `open` (default: anyone may join) or `invite` (only an admin adds members).
    #[serde(default)]
    join_mode: String,
    /// Whether members read the history from before they joined (default false).
    #[serde(default)]
    history_visible: bool,
}

/// Creates a group owned by the caller.
#[utoipa::path(post, path = "/api/v1/groups/create", tag = "groups", security(("bearer" = [])),
    request_body = CreateGroupBody,
    responses(
        (status = 201, description = "Created", body = GroupCreated),
        (status = 404, description = "An unknown member (1003)", body = ErrorBody),
    ))]
pub(crate) async fn create(
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
            join_mode: b.join_mode,
            history_visible: b.history_visible,
        }));
    let group = group.await?.into_inner();
    let conversation_id = group.conversation_id.clone();
    created(GroupCreated {
        group: GroupJson::from(group),
        conversation_id,
    })
}

/// A group, and its members when the caller is one of them.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = GroupBody),
        (status = 404, description = "No such group (1003)", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Answer {
    let info = gw.logic().get_group(Request::new(pb::GroupRequest {
        user_id: caller.user_id,
        group_id: id,
    }));
    let info = info.await?.into_inner();
    let members = (!info.members.is_empty())
        .then(|| info.members.into_iter().map(MemberJson::from).collect());
    ok(GroupBody {
        group: info.group.map(GroupJson::from),
        members,
    })
}

/// The caller joins a group.
#[utoipa::path(post, path = "/api/v1/groups/{id}/join", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 204, description = "A member now"),
        (status = 404, description = "No such group (1003)", body = ErrorBody),
    ))]
pub(crate) async fn join(
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

/// The caller leaves a group (not its owner).
#[utoipa::path(post, path = "/api/v1/groups/{id}/leave", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 204, description = "Left"),
        (status = 403, description = "The owner cannot leave (1005)", body = ErrorBody),
        (status = 404, description = "No such group or not a member (1003)", body = ErrorBody),
    ))]
pub(crate) async fn leave(
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

/// Users to add.
#[derive(Deserialize, ToSchema)]
pub(crate) struct AddMembersBody {
    user_ids: Vec<String>,
}

/// Adds members (owners and admins only).
#[utoipa::path(post, path = "/api/v1/groups/{id}/members", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "The group's id")),
    request_body = AddMembersBody,
    responses(
        (status = 204, description = "Added"),
        (status = 403, description = "Not an owner or admin, or the group is full (1005)", body = ErrorBody),
        (status = 404, description = "No such group or user (1003)", body = ErrorBody),
    ))]
pub(crate) async fn add_members(
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

/// Removes a member (owners and admins only; never the owner).
#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{user_id}", tag = "groups",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The group's id"),
        ("user_id" = String, Path, description = "The member to remove"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an owner or admin, or the owner named (1005)", body = ErrorBody),
        (status = 404, description = "No such group or member (1003)", body = ErrorBody),
    ))]
pub(crate) async fn remove_member(
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
