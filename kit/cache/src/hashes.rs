//! Hashes.

use std::collections::HashMap;

use crate::{Cache, Error, command::Command};

/// Hashes: `cache.hash()`.
#[derive(Debug, Clone, Copy)]
pub struct Hashes<'a> {
    pub(crate) cache: &'a Cache,
}

impl Hashes<'_> {
    /// A field's value.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>, Error> {
        let command = Command::HGet {
            key: self.cache.key(key),
            field: field.to_owned(),
        };
        Ok(self.cache.one(command).await?.into_bytes())
    }

    /// Sets a field; whether it is new.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hset(
        &self,
        key: &str,
        field: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<bool, Error> {
        let pairs = vec![(field.to_owned(), value.as_ref().to_vec())];
        Ok(self
            .cache
            .one(Command::HSet {
                key: self.cache.key(key),
                pairs,
            })
            .await?
            .as_int()
            > 0)
    }

    /// Sets several fields; how many are new.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hmset(&self, key: &str, pairs: &[(&str, &[u8])]) -> Result<u64, Error> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let pairs = pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), v.to_vec()))
            .collect();
        Ok(self
            .cache
            .one(Command::HSet {
                key: self.cache.key(key),
                pairs,
            })
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// Every field and value.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hgetall(&self, key: &str) -> Result<HashMap<String, Vec<u8>>, Error> {
        let items = self
            .cache
            .one(Command::HGetAll(self.cache.key(key)))
            .await?
            .into_array();
        Ok(items
            .chunks(2)
            .filter_map(|pair| match pair {
                [field, value] => Some((
                    String::from_utf8_lossy(&field.clone().into_bytes()?).into_owned(),
                    value.clone().into_bytes()?,
                )),
                _ => None,
            })
            .collect())
    }

    /// Deletes fields; how many existed.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64, Error> {
        if fields.is_empty() {
            return Ok(0);
        }
        let fields = fields.iter().map(|f| (*f).to_owned()).collect();
        Ok(self
            .cache
            .one(Command::HDel {
                key: self.cache.key(key),
                fields,
            })
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// Whether a field exists.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hexists(&self, key: &str, field: &str) -> Result<bool, Error> {
        let command = Command::HExists {
            key: self.cache.key(key),
            field: field.to_owned(),
        };
        Ok(self.cache.one(command).await?.as_int() > 0)
    }

    /// How many fields.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn hlen(&self, key: &str) -> Result<u64, Error> {
        Ok(self
            .cache
            .one(Command::HLen(self.cache.key(key)))
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// Adds `by` to a field's integer value (0 if unset); the result.
    ///
    /// # Errors
    /// [`Error::NotAnInteger`], [`Error::WrongType`]; backend errors.
    pub async fn hincrby(&self, key: &str, field: &str, by: i64) -> Result<i64, Error> {
        let command = Command::HIncrBy {
            key: self.cache.key(key),
            field: field.to_owned(),
            by,
        };
        Ok(self.cache.one(command).await?.as_int())
    }
}
