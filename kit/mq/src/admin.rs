//! Topic administration.

use serde::Serialize;

use crate::{Error, Mq, error::Result};

/// A topic and its partition count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
}

/// What the in-process broker keeps of one partition ([`Admin::retained`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retained {
    /// The offset of the oldest record kept (`end` when none is).
    pub start: i64,
    /// The offset the next record will get.
    pub end: i64,
    /// The bytes its records count against `retention_bytes`.
    pub bytes: usize,
}

/// Creates, deletes and lists topics; from [`Mq::admin`].
///
/// ```
/// # use gochat_core::{Context, Env};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gochat_mq::Error> {
/// use gochat_mq::{Config, Error, MemoryConfig, Backend, Options};
///
/// let mut config = Config::for_env(Env::Development);
/// config.backend = Backend::Memory(MemoryConfig::named("admin-doc"));
/// let mq = gochat_mq::new(&Context::new(), config, Options::default()).await?;
/// mq.admin().create_topic("events", 6).await?;
/// assert_eq!(mq.admin().partitions("events").await?, 6);
/// assert!(matches!(mq.admin().create_topic("events", 6).await, Err(Error::TopicExists(_))));
/// mq.admin().delete_topic("events").await?;
/// assert!(matches!(mq.admin().partitions("events").await, Err(Error::UnknownTopic(_))));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Admin<'a> {
    pub(crate) mq: &'a Mq,
}

impl Admin<'_> {
    /// Creates `name` with `partitions` partitions.
    ///
    /// # Errors
    /// [`Error::TopicExists`]; [`Error::InvalidArgument`] for an empty name or zero partitions.
    pub async fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        self.mq.shared.client.create_topic(name, partitions).await
    }

    /// Creates `name` unless it exists; says whether it did.
    ///
    /// # Errors
    /// As [`Admin::create_topic`], except for an existing topic.
    pub async fn ensure_topic(&self, name: &str, partitions: u32) -> Result<bool> {
        match self.create_topic(name, partitions).await {
            Ok(()) => Ok(true),
            Err(Error::TopicExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `name` and its messages.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`].
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.mq.shared.client.delete_topic(name).await
    }

    /// Every topic (Kafka's internal `__` topics left out), by name.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Timeout`] when the broker does not answer.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.mq.shared.client.list_topics().await
    }

    /// What the in-process broker keeps of each partition of `topic`, by partition; `None`
    /// on Kafka or for an unknown topic. For tests and diagnostics.
    #[doc(hidden)]
    pub fn retained(&self, topic: &str) -> Option<Vec<Retained>> {
        self.mq.shared.client.retained(topic)
    }

    /// How many partitions `topic` has.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`].
    pub async fn partitions(&self, topic: &str) -> Result<u32> {
        self.list_topics()
            .await?
            .into_iter()
            .find(|t| t.name == topic)
            .map(|t| t.partitions)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))
    }
}
