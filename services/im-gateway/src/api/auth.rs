//! Accounts and sessions: register, login, refresh, logout.

use axum::extract::State;
use gochat_proto::logic::{
    self as pb, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
};
use serde::Deserialize;
use tonic::Request;
use utoipa::ToSchema;

use super::{Answer, created, no_content, ok};
use crate::{
    Gateway,
    extract::{Body, Caller, ClientAddr},
    views::{TokensJson, UserBody, UserJson},
};

/// A new account.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RegisterBody {
    /// 3 to 32 of `A-Z a-z 0-9 _ . -` after normalisation (trimmed, Unicode NFKC, lower
    /// case): `Alice`, ` alice` and `ＡＬＩＣＥ` are the one account `alice`.
    username: String,
    /// 8 to 128 bytes.
    password: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    email: String,
}

/// Registers an account.
#[utoipa::path(post, path = "/api/v1/users/register", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = UserBody),
        (status = 409, description = "The username is taken (1007)", body = crate::error::ErrorBody),
        (status = 429, description = "Too many registrations from this address, or password hashing is busy (1006, Retry-After)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn register(
    State(gw): State<Gateway>,
    addr: ClientAddr,
    Body(b): Body<RegisterBody>,
) -> Answer {
    let user = gw.logic().register(Request::new(RegisterRequest {
        username: b.username,
        password: b.password,
        nickname: b.nickname,
        email: b.email,
        client_addr: addr.for_limits(),
    }));
    created(UserBody {
        user: UserJson::own(user.await?.into_inner()),
    })
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
pub(crate) struct LoginBody {
    username: String,
    password: String,
}

fn token_pair(pair: pb::TokenPair) -> Answer {
    ok(TokensJson {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer",
        expires_in: pair.expires_in_secs,
        user: pair.user.map(UserJson::own),
    })
}

/// Logs in: a new session's access and refresh tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = TokensJson),
        (status = 401, description = "Wrong username or password (1002)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn login(
    State(gw): State<Gateway>,
    addr: ClientAddr,
    Body(b): Body<LoginBody>,
) -> Answer {
    let pair = gw.logic().login(Request::new(LoginRequest {
        username: b.username,
        password: b.password,
        client_addr: addr.for_limits(),
    }));
    token_pair(pair.await?.into_inner())
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
pub(crate) struct RefreshBody {
    refresh_token: String,
}

/// A new token pair; the refresh token given stops working.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses(
        (status = 200, description = "A new pair", body = TokensJson),
        (status = 401, description = "A bad, used or revoked refresh token (1002)", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn refresh(State(gw): State<Gateway>, Body(b): Body<RefreshBody>) -> Answer {
    let pair = gw.logic().refresh(Request::new(RefreshRequest {
        refresh_token: b.refresh_token,
    }));
    token_pair(pair.await?.into_inner())
}

/// Ends the session: its tokens stop working at once and its sockets are closed, on every
/// gateway that holds one (im-logic tells them; each also refuses the session's frames).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out")))]
pub(crate) async fn logout(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let done = gw.logic().logout(Request::new(LogoutRequest {
        access_token: caller.token,
    }));
    done.await?;
    gochat_clog::info!(gw.inner.deps.log, user = %caller.user_id, session = %caller.session_id, "a session logged out");
    no_content()
}
