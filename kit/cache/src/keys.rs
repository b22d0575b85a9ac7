//! Key operations.

use std::time::Duration;

use crate::{Cache, Error, command::Command};

/// Key operations: `cache.keys()`.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub(crate) cache: &'a Cache,
}

/// The time to live of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and does not expire.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

impl Keys<'_> {
    /// Deletes keys; how many existed.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn del(&self, keys: &[&str]) -> Result<u64, Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        let reply = self
            .cache
            .one(Command::Del(
                keys.iter().map(|k| self.cache.key(k)).collect(),
            ))
            .await?;
        Ok(reply.as_int().unsigned_abs())
    }

    /// Whether the key exists.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self
            .cache
            .one(Command::Exists(self.cache.key(key)))
            .await?
            .as_int()
            > 0)
    }

    /// Sets the key's TTL; whether the key exists.
    ///
    /// # Errors
    /// A zero TTL; backend errors.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(format!(
                "a TTL for {key} must be above zero"
            )));
        }
        Ok(self
            .cache
            .one(Command::PExpire {
                key: self.cache.key(key),
                ttl,
            })
            .await?
            .as_int()
            > 0)
    }

    /// The key's time to live.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn ttl(&self, key: &str) -> Result<Ttl, Error> {
        Ok(
            match self
                .cache
                .one(Command::PTtl(self.cache.key(key)))
                .await?
                .as_int()
            {
                -2 => Ttl::Missing,
                -1 => Ttl::Persistent,
                ms => Ttl::Expires(Duration::from_millis(ms.unsigned_abs())),
            },
        )
    }
}
