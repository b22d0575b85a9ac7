//! Sorted sets.

use crate::{Cache, Error, command::Command, scored};

/// Sorted sets: `cache.zset()`. Members are bytes, scores `f64`.
#[derive(Debug, Clone, Copy)]
pub struct ZSets<'a> {
    pub(crate) cache: &'a Cache,
}

impl ZSets<'_> {
    /// Adds members or updates their scores; how many are new.
    ///
    /// # Errors
    /// A NaN score; [`Error::WrongType`]; backend errors.
    pub async fn zadd(&self, key: &str, items: &[(f64, &[u8])]) -> Result<u64, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        if items.iter().any(|(s, _)| s.is_nan()) {
            return Err(Error::InvalidArgument("a score must not be NaN".to_owned()));
        }
        let members = items.iter().map(|(s, m)| (*s, m.to_vec())).collect();
        Ok(self
            .cache
            .one(Command::ZAdd {
                key: self.cache.key(key),
                members,
            })
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// Members by rank, lowest score first, with scores. Ranks are inclusive; negative ranks
    /// count from the end (`0, -1` is everything).
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zrange(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(Vec<u8>, f64)>, Error> {
        let command = Command::ZRange {
            key: self.cache.key(key),
            start,
            stop,
            rev: false,
        };
        Ok(scored(self.cache.one(command).await?))
    }

    /// Like [`ZSets::zrange`], highest score first.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zrevrange(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(Vec<u8>, f64)>, Error> {
        let command = Command::ZRange {
            key: self.cache.key(key),
            start,
            stop,
            rev: true,
        };
        Ok(scored(self.cache.one(command).await?))
    }

    /// Members with `min <= score <= max`, lowest first, with scores.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zrangebyscore(
        &self,
        key: &str,
        min: f64,
        max: f64,
    ) -> Result<Vec<(Vec<u8>, f64)>, Error> {
        let command = Command::ZRangeByScore {
            key: self.cache.key(key),
            min,
            max,
        };
        Ok(scored(self.cache.one(command).await?))
    }

    /// Removes members; how many were there.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zrem(&self, key: &str, items: &[&[u8]]) -> Result<u64, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        let members = items.iter().map(|m| m.to_vec()).collect();
        Ok(self
            .cache
            .one(Command::ZRem {
                key: self.cache.key(key),
                members,
            })
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// Removes members by rank (as in [`ZSets::zrange`]); how many.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zremrangebyrank(&self, key: &str, start: i64, stop: i64) -> Result<u64, Error> {
        let command = Command::ZRemRangeByRank {
            key: self.cache.key(key),
            start,
            stop,
        };
        Ok(self.cache.one(command).await?.as_int().unsigned_abs())
    }

    /// How many members.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zcard(&self, key: &str) -> Result<u64, Error> {
        Ok(self
            .cache
            .one(Command::ZCard(self.cache.key(key)))
            .await?
            .as_int()
            .unsigned_abs())
    }

    /// How many members have `min <= score <= max`.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zcount(&self, key: &str, min: f64, max: f64) -> Result<u64, Error> {
        let command = Command::ZCount {
            key: self.cache.key(key),
            min,
            max,
        };
        Ok(self.cache.one(command).await?.as_int().unsigned_abs())
    }

    /// A member's score.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn zscore(&self, key: &str, member: impl AsRef<[u8]>) -> Result<Option<f64>, Error> {
        let command = Command::ZScore {
            key: self.cache.key(key),
            member: member.as_ref().to_vec(),
        };
        Ok(self.cache.one(command).await?.as_float())
    }
}
