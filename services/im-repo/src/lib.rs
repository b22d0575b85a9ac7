#![doc = include_str!("../README.md")]
// Library code returns typed errors; only proven invariants may panic (with a comment).
#![warn(clippy::unwrap_used)]

mod conversations;
mod convert;
mod entity;
mod error;
mod groups;
mod messages;
mod migration;
mod service;
mod sessions;
mod store;
mod users;
mod views;

use std::time::Duration;

use gochat_cache::Cache;
use gochat_db::Db;
use gochat_uid::Uid;
use serde::{Deserialize, Serialize};

pub use error::Error;
pub use messages::MAX_PAGE;
pub use migration::{Migrator, messages_shards};

pub use gochat_proto::WORLD;

/// How the repository caches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// How long users, conversations and memberships stay cached. Default: 10 minutes.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// The most members a group may have. Default: 2,000.
    pub max_group_members: i32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(600),
            max_group_members: 2_000,
        }
    }
}

/// The repository: the only code that touches the database. Reads of users, conversations
/// and memberships are cache-aside with single-flight (gochat-cache), and every write
/// invalidates what it changed. It implements the gRPC `RepoService`, so the same value serves
/// in-process callers (standalone) and a tonic server (distributed).
#[derive(Clone, Debug)]
pub struct Repo {
    db: Db,
    cache: Cache,
    ids: Uid,
    config: Config,
}

impl Repo {
    /// A repository over `db` (migrated with [`Migrator`], and [`messages_shards`] when
    /// messages are sharded), `cache` and `ids`. Creates the world channel if missing.
    ///
    /// # Errors
    /// The database failing.
    pub async fn new(db: Db, cache: Cache, ids: Uid, config: Config) -> Result<Self, Error> {
        let repo = Self {
            db,
            cache,
            ids,
            config,
        };
        repo.ensure_world().await?;
        Ok(repo)
    }

    /// Closes the database pools, the cache connection and the id generator. Idempotent.
    pub async fn close(&self) {
        self.db.close().await;
        self.cache.close().await;
        self.ids.close().await;
    }

    fn next_id(&self) -> Result<String, Error> {
        Ok(self.ids.snowflake()?.to_string())
    }

    async fn forget(&self, keys: &[&str]) -> Result<(), Error> {
        self.cache.keys().del(keys).await?;
        Ok(())
    }
}

pub(crate) use gochat_proto::now_ms;

/// A required string field, trimmed.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Error> {
    let value = value.trim();
    if value.is_empty() {
        Err(Error::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(value)
    }
}
