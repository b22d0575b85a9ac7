//! Sets.

use crate::{Cache, Error, command::Command};

/// Sets: `cache.set()`.
#[derive(Debug, Clone, Copy)]
pub struct Sets<'a> {
    pub(crate) cache: &'a Cache,
}

fn members(members: &[&[u8]]) -> Vec<Vec<u8>> {
    members.iter().map(|m| m.to_vec()).collect()
}

impl Sets<'_> {
    /// Adds members; how many are new.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn sadd(&self, key: &str, items: &[&[u8]]) -> Result<u64, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        let command = Command::SAdd {
            key: self.cache.key(key),
            members: members(items),
        };
        Ok(self.cache.one(command).await?.as_int().unsigned_abs())
    }

    /// Removes members; how many were there.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn srem(&self, key: &str, items: &[&[u8]]) -> Result<u64, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        let command = Command::SRem {
            key: self.cache.key(key),
            members: members(items),
        };
        Ok(self.cache.one(command).await?.as_int().unsigned_abs())
    }

    /// Every member, in no particular order.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn smembers(&self, key: &str) -> Result<Vec<Vec<u8>>, Error> {
        let reply = self
            .cache
            .one(Command::SMembers(self.cache.key(key)))
            .await?;
        Ok(reply
            .into_array()
            .into_iter()
            .filter_map(crate::Reply::into_bytes)
            .collect())
    }

    /// Whether `member` is in the set.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn sismember(&self, key: &str, member: impl AsRef<[u8]>) -> Result<bool, Error> {
        let command = Command::SIsMember {
            key: self.cache.key(key),
            member: member.as_ref().to_vec(),
        };
        Ok(self.cache.one(command).await?.as_int() > 0)
    }

    /// How many members.
    ///
    /// # Errors
    /// [`Error::WrongType`]; backend errors.
    pub async fn scard(&self, key: &str) -> Result<u64, Error> {
        Ok(self
            .cache
            .one(Command::SCard(self.cache.key(key)))
            .await?
            .as_int()
            .unsigned_abs())
    }
}
