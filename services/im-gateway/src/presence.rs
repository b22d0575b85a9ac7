//! Presence: while a user has a connection here, this gateway's id is in the cache set
//! `presence:{user}` (im-logic routes by it), with a TTL refreshed at a third of itself so a
//! gateway that dies without cleaning up drops out.

use std::time::Duration;

use gochat_cache::Cache;
use im_logic::presence_key;

/// Users marked online per pipeline.
const BATCH: usize = 500;

pub(crate) struct Presence {
    cache: Cache,
    gateway_id: String,
    ttl: Duration,
}

impl Presence {
    pub(crate) fn new(cache: Cache, gateway_id: String, ttl: Duration) -> Self {
        Self {
            cache,
            gateway_id,
            ttl,
        }
    }

    /// Marks the users online on this gateway (again), with a fresh TTL.
    pub(crate) async fn online(&self, users: &[String]) -> Result<(), gochat_cache::Error> {
        for chunk in users.chunks(BATCH) {
            let mut pipeline = self.cache.pipeline();
            for user in chunk {
                let key = presence_key(user);
                pipeline = pipeline
                    .sadd(&key, self.gateway_id.as_bytes())
                    .expire(&key, self.ttl);
            }
            for reply in pipeline.exec().await? {
                reply?;
            }
        }
        Ok(())
    }

    /// Takes this gateway out of the user's presence.
    pub(crate) async fn offline(&self, user: &str) -> Result<(), gochat_cache::Error> {
        self.cache
            .set()
            .srem(&presence_key(user), &[self.gateway_id.as_bytes()])
            .await
            .map(drop)
    }

    /// How often [`Presence::online`] must be repeated.
    pub(crate) fn refresh_every(&self) -> Duration {
        self.ttl / 3
    }
}
