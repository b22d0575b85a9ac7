//! The HTTP API under `/api/v1` (CONTRACT.md): each handler checks the request's shape and
//! asks im-logic. Every handler is described for the OpenAPI document (`openapi.rs`).

mod auth;
mod conversations;
mod groups;
mod messages;
pub(crate) mod openapi;
mod tickets;
mod users;

use axum::{
    Json, Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use serde::Serialize;

use crate::{ApiError, Gateway};

type Answer = Result<Response, ApiError>;

/// The routes, relative to `/api/v1`.
pub(crate) fn routes() -> Router<Gateway> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/users/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route(
            "/users/profile",
            get(users::profile).put(users::update_profile),
        )
        .route("/users/search", get(users::search))
        .route("/users/{id}", get(users::user))
        .route("/conversations/create", post(conversations::create))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", put(conversations::update))
        .route("/groups/create", post(groups::create))
        .route("/groups/{id}", get(groups::get))
        .route("/groups/{id}/join", post(groups::join))
        .route("/groups/{id}/leave", post(groups::leave))
        .route("/groups/{id}/members", post(groups::add_members))
        .route(
            "/groups/{id}/members/{user_id}",
            delete(groups::remove_member),
        )
        .route("/messages/send", post(messages::send))
        .route("/messages/history", get(messages::history))
        .route("/messages/unread", get(messages::unread))
        .route("/messages/read", post(messages::read))
        .route("/ws/ticket", post(tickets::issue))
}

fn ok(body: impl Serialize) -> Answer {
    Ok(Json(body).into_response())
}

fn created(body: impl Serialize) -> Answer {
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A message type when none is given.
fn text() -> String {
    "text".to_owned()
}
