//! String values.
//!
//! ```
//! use std::time::Duration;
//! use gochat_cache::{Config, Options};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_cache::Error> {
//! let cache = gochat_cache::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let s = cache.string();
//! s.set("greeting", "hello", Some(Duration::from_secs(60))).await?;
//! assert_eq!(s.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! assert!(!s.set_nx("greeting", "again", None).await?);
//! assert_eq!(s.incr_by("visits", 5).await?, 5);
//! s.set_json("user:1", &serde_json::json!({"name": "ann"}), None).await?;
//! let user: Option<serde_json::Value> = s.get_json("user:1").await?;
//! assert_eq!(user.unwrap()["name"], "ann");
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Cache, Error,
    command::{Command, Reply, SetWhen},
};

/// String values: `cache.string()`.
#[derive(Debug, Clone, Copy)]
pub struct Strings<'a> {
    pub(crate) cache: &'a Cache,
}

impl Strings<'_> {
    /// The value, if set.
    ///
    /// # Errors
    /// [`Error::WrongType`] when the key holds a hash, set or sorted set; backend errors.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .cache
            .one(Command::Get(self.cache.key(key)))
            .await?
            .into_bytes())
    }

    /// Sets the value, with a TTL or none (a previous TTL is removed).
    ///
    /// # Errors
    /// Backend errors.
    pub async fn set(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        self.write(key, value.as_ref(), ttl, SetWhen::Always)
            .await
            .map(drop)
    }

    /// Sets the value only if the key does not exist; whether it did.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn set_nx(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, Error> {
        self.write(key, value.as_ref(), ttl, SetWhen::IfAbsent)
            .await
    }

    async fn write(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        when: SetWhen,
    ) -> Result<bool, Error> {
        if ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidArgument(format!(
                "a TTL for {key} must be above zero"
            )));
        }
        let reply = self
            .cache
            .one(Command::Set {
                key: self.cache.key(key),
                value: value.to_vec(),
                ttl,
                when,
            })
            .await?;
        Ok(reply == Reply::Ok)
    }

    /// Sets the value (removing any TTL) and returns the previous one.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn get_set(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let command = Command::GetSet {
            key: self.cache.key(key),
            value: value.as_ref().to_vec(),
        };
        Ok(self.cache.one(command).await?.into_bytes())
    }

    /// Adds `by` to the integer value (0 if unset) and returns the result. Keeps the TTL.
    ///
    /// # Errors
    /// [`Error::NotAnInteger`] when the value is not an integer; backend errors.
    pub async fn incr_by(&self, key: &str, by: i64) -> Result<i64, Error> {
        Ok(self
            .cache
            .one(Command::IncrBy {
                key: self.cache.key(key),
                by,
            })
            .await?
            .as_int())
    }

    /// `incr_by(key, 1)`.
    ///
    /// # Errors
    /// As [`Strings::incr_by`].
    pub async fn incr(&self, key: &str) -> Result<i64, Error> {
        self.incr_by(key, 1).await
    }

    /// `incr_by(key, -by)`.
    ///
    /// # Errors
    /// As [`Strings::incr_by`].
    pub async fn decr_by(&self, key: &str, by: i64) -> Result<i64, Error> {
        self.incr_by(key, by.checked_neg().unwrap_or(i64::MAX))
            .await
    }

    /// `incr_by(key, -1)`.
    ///
    /// # Errors
    /// As [`Strings::incr_by`].
    pub async fn decr(&self, key: &str) -> Result<i64, Error> {
        self.incr_by(key, -1).await
    }

    /// The values of several keys; `None` where unset or not a string.
    ///
    /// # Errors
    /// Backend errors.
    pub async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let command = Command::MGet(keys.iter().map(|k| self.cache.key(k)).collect());
        Ok(self
            .cache
            .one(command)
            .await?
            .into_array()
            .into_iter()
            .map(Reply::into_bytes)
            .collect())
    }

    /// Sets several values at once (no TTL).
    ///
    /// # Errors
    /// Backend errors.
    pub async fn mset(&self, pairs: &[(&str, &[u8])]) -> Result<(), Error> {
        if pairs.is_empty() {
            return Ok(());
        }
        let pairs = pairs
            .iter()
            .map(|(k, v)| (self.cache.key(k), v.to_vec()))
            .collect();
        self.cache.one(Command::MSet(pairs)).await.map(drop)
    }

    /// The value decoded from JSON, if set.
    ///
    /// # Errors
    /// [`Error::Serde`] when the value is not JSON of type `T`; as [`Strings::get`].
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get(key).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Serde {
                    key: self.cache.key(key),
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    /// Sets the value as JSON.
    ///
    /// # Errors
    /// [`Error::Serde`] when the value does not serialise; as [`Strings::set`].
    pub async fn set_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Serde {
            key: self.cache.key(key),
            reason: e.to_string(),
        })?;
        self.set(key, bytes, ttl).await
    }
}
