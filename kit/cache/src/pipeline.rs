//! Several commands in one round trip.
//!
//! ```
//! use std::time::Duration;
//! use gochat_cache::{Config, Options, Reply};
//! use gochat_core::{Context, Env};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gochat_cache::Error> {
//! let cache = gochat_cache::new(&Context::new(), Config::for_env(Env::Development), Options::default()).await?;
//! let replies = cache
//!     .pipeline()
//!     .set("a", "1", Some(Duration::from_secs(60)))
//!     .incr_by("a", 2)
//!     .get("a")
//!     .exec()
//!     .await?;
//! assert_eq!(replies[1].as_ref().ok(), Some(&Reply::Int(3)));
//! assert_eq!(replies[2].as_ref().ok(), Some(&Reply::Bytes(b"3".to_vec())));
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::{
    Cache, Error, Reply,
    command::{Command, SetWhen},
};

/// Commands queued to run in one round trip, in order (not atomically). Each has its own
/// result: one failing does not stop the others.
#[derive(Debug)]
#[must_use = "a pipeline does nothing until exec"]
pub struct Pipeline<'a> {
    cache: &'a Cache,
    commands: Vec<Command>,
}

impl<'a> Pipeline<'a> {
    pub(crate) fn new(cache: &'a Cache) -> Self {
        Self {
            cache,
            commands: Vec::new(),
        }
    }

    fn push(mut self, command: Command) -> Self {
        self.commands.push(command);
        self
    }

    /// Queues GET.
    pub fn get(self, key: &str) -> Self {
        let key = self.cache.key(key);
        self.push(Command::Get(key))
    }

    /// Queues SET (with a TTL or none).
    pub fn set(self, key: &str, value: impl AsRef<[u8]>, ttl: Option<Duration>) -> Self {
        let key = self.cache.key(key);
        self.push(Command::Set {
            key,
            value: value.as_ref().to_vec(),
            ttl,
            when: SetWhen::Always,
        })
    }

    /// Queues INCRBY.
    pub fn incr_by(self, key: &str, by: i64) -> Self {
        let key = self.cache.key(key);
        self.push(Command::IncrBy { key, by })
    }

    /// Queues DEL.
    pub fn del(self, key: &str) -> Self {
        let key = self.cache.key(key);
        self.push(Command::Del(vec![key]))
    }

    /// Queues PEXPIRE.
    pub fn expire(self, key: &str, ttl: Duration) -> Self {
        let key = self.cache.key(key);
        self.push(Command::PExpire { key, ttl })
    }

    /// Queues HSET of one field.
    pub fn hset(self, key: &str, field: &str, value: impl AsRef<[u8]>) -> Self {
        let key = self.cache.key(key);
        self.push(Command::HSet {
            key,
            pairs: vec![(field.to_owned(), value.as_ref().to_vec())],
        })
    }

    /// Queues SMEMBERS (its reply: an array of the members).
    pub fn smembers(self, key: &str) -> Self {
        let key = self.cache.key(key);
        self.push(Command::SMembers(key))
    }

    /// Queues SADD of one member.
    pub fn sadd(self, key: &str, member: impl AsRef<[u8]>) -> Self {
        let key = self.cache.key(key);
        self.push(Command::SAdd {
            key,
            members: vec![member.as_ref().to_vec()],
        })
    }

    /// Queues ZADD of one member.
    pub fn zadd(self, key: &str, score: f64, member: impl AsRef<[u8]>) -> Self {
        let key = self.cache.key(key);
        self.push(Command::ZAdd {
            key,
            members: vec![(score, member.as_ref().to_vec())],
        })
    }

    /// How many commands are queued.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Runs the queued commands; one result per command, in order.
    ///
    /// # Errors
    /// The round trip itself failed (connection, closed provider).
    pub async fn exec(self) -> Result<Vec<Result<Reply, Error>>, Error> {
        if self.commands.is_empty() {
            return Ok(Vec::new());
        }
        self.cache.exec(self.commands).await
    }
}
