//! WebSocket tickets, so that no access token travels in a URL.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Answer, ok};
use crate::{Gateway, extract::Caller};

/// A ticket that opens one WebSocket.
#[derive(Serialize, ToSchema)]
pub(crate) struct TicketJson {
    /// Opens one socket with `GET /ws?ticket=`, once.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

/// A single-use ticket for `GET /ws?ticket=` (an extension of the contract): the socket opens
/// with the caller's access token without the token appearing in the URL.
#[utoipa::path(post, path = "/api/v1/ws/ticket", tag = "ws", security(("bearer" = [])),
    responses((status = 200, description = "A ticket, valid once within `expires_in` seconds", body = TicketJson)))]
pub(crate) async fn issue(State(gw): State<Gateway>, caller: Caller) -> Answer {
    let ticket = gw.issue_ticket(&caller.token).await?;
    ok(TicketJson {
        ticket,
        expires_in: gw.inner.config.ws_ticket_ttl.as_secs().max(1),
    })
}
