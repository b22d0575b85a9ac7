//! WebSocket tickets: `POST /api/v1/ws/ticket` trades an access token for a random ticket
//! that opens one socket (`GET /ws?ticket=`) within `ws_ticket_ttl`, so the token itself never
//! appears in a URL (and so never in a proxy's or browser's logs).
//!
//! A ticket is a cache entry `ws:ticket:{ticket}` holding the access token; redeeming it
//! deletes it, and only the caller whose delete removed it may use it.

use crate::{ApiError, Gateway, error::code::INTERNAL};

/// The cache key of a ticket.
fn key(ticket: &str) -> String {
    format!("ws:ticket:{ticket}")
}

/// Whether `ticket` has the shape of the ones issued (32 lowercase hex digits).
fn well_formed(ticket: &str) -> bool {
    ticket.len() == 32
        && ticket
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn unavailable(e: &gochat_cache::Error) -> ApiError {
    ApiError::new(INTERNAL, format!("tickets are unavailable: {e}"))
}

impl Gateway {
    /// A new ticket for `access_token`: 122 random bits from the operating system's CSPRNG
    /// (a version 4 UUID).
    pub(crate) async fn issue_ticket(&self, access_token: &str) -> Result<String, ApiError> {
        let ticket = uuid::Uuid::new_v4().simple().to_string();
        let ttl = Some(self.inner.config.ws_ticket_ttl);
        self.inner
            .deps
            .cache
            .string()
            .set(&key(&ticket), access_token, ttl)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(ticket)
    }

    /// The access token of a ticket, which stops working at once; 1002 for a ticket that is
    /// unknown, expired or already used.
    pub(crate) async fn redeem_ticket(&self, ticket: &str) -> Result<String, ApiError> {
        let refused = || ApiError::unauthorized("the ticket is unknown, expired or already used");
        if !well_formed(ticket) {
            return Err(refused());
        }
        let key = key(ticket);
        let cache = &self.inner.deps.cache;
        let token = cache
            .string()
            .get(&key)
            .await
            .map_err(|e| unavailable(&e))?;
        // Two redeemers may both read the token; only one of them deletes the entry.
        let deleted = cache
            .keys()
            .del(&[key.as_str()])
            .await
            .map_err(|e| unavailable(&e))?;
        match token {
            Some(token) if deleted == 1 => String::from_utf8(token).map_err(|_| refused()),
            _ => Err(refused()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issued_shapes_are_looked_up() {
        let issued = uuid::Uuid::new_v4().simple().to_string();
        assert!(well_formed(&issued));
        assert!(!well_formed(""));
        assert!(!well_formed(&issued.to_uppercase()));
        assert!(!well_formed(&format!("{issued}0")));
        assert!(!well_formed("*:*:*:*:*:*:*:*:*:*:*:*:*:*:*:**"));
    }
}
