//! Profiles.

use axum::extract::State;
use gochat_proto::logic::{self as pb, UserRef};
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, ok};
use crate::{
    Gateway,
    extract::{Body, Caller, Params, Segments},
    views::{UserBody, UserJson},
};

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/profile", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserBody)))]
pub(crate) async fn profile(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let user = gw.logic().get_profile(Request::new(UserRef {
        user_id: caller.user_id,
    }));
    ok(UserBody {
        user: UserJson::own(user.await?.into_inner()),
    })
}

/// What a profile update changes.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ProfileBody {
    /// 1 to 64 characters.
    nickname: Option<String>,
    /// A URL, at most 512 bytes.
    avatar: Option<String>,
}

/// Changes the caller's nickname or avatar.
#[utoipa::path(put, path = "/api/v1/users/profile", tag = "users", security(("bearer" = [])),
    request_body = ProfileBody,
    responses((status = 200, description = "The updated profile", body = UserBody)))]
pub(crate) async fn update_profile(
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
    ok(UserBody {
        user: UserJson::own(user.await?.into_inner()),
    })
}

/// A user's public profile: `{id, username, nickname, avatar}`.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The public profile", body = UserJson),
        (status = 404, description = "No such user (1003)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn user(
    State(gw): State<Gateway>,
    caller: Caller,
    Segments(id): Segments<String>,
) -> Answer {
    let user = gw.logic().get_user(Request::new(pb::GetUserRequest {
        user_id: caller.user_id,
        target_user_id: id,
    }));
    ok(UserJson::public(user.await?.into_inner()))
}

/// `?username=`.
#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    username: String,
}

/// The public profile of the user with exactly this username (to start a chat with them).
#[utoipa::path(get, path = "/api/v1/users/search", tag = "users", security(("bearer" = [])),
    params(("username" = String, Query, description = "The exact username")),
    responses(
        (status = 200, description = "The public profile", body = UserJson),
        (status = 404, description = "No such user (1003)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn search(
    State(gw): State<Gateway>,
    caller: Caller,
    Params(q): Params<SearchQuery>,
) -> Answer {
    let user = gw.logic().find_user(Request::new(pb::FindUserRequest {
        user_id: caller.user_id,
        username: q.username,
    }));
    ok(UserJson::public(user.await?.into_inner()))
}
