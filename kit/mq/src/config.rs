//! Static configuration: which broker, how the producer sends, how consumers handle failures.
//!
//! ```
//! use gochat_mq::{Acks, Backend, Compression, Config};
//! use gochat_core::Env;
//!
//! let config: Config = serde_json::from_str(r#"{
//!     "backend": {"kafka": {"brokers": ["10.0.0.7:9092"], "acks": "all", "compression": "lz4",
//!                           "properties": {"security.protocol": "sasl_ssl",
//!                                          "sasl.password": "s3cret"}}},
//!     "consumer": {"max_retries": 5, "retry_backoff": "200ms"}
//! }"#).unwrap();
//! config.validate().unwrap();
//! assert!(!format!("{config:?}").contains("s3cret"), "secrets stay out of Debug");
//!
//! let Backend::Kafka(prod) = Config::for_env(Env::Production).backend else { unreachable!() };
//! assert_eq!((prod.acks, prod.idempotence, prod.compression), (Acks::All, true, Compression::Lz4));
//! ```

use std::{collections::BTreeMap, fmt, time::Duration};

use gochat_core::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// How an mq Provider is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The broker. Default: in-process in development, Kafka in production.
    pub backend: Backend,
    /// How consumers handle, retry and commit. Each consumer may override it.
    pub consumer: ConsumerConfig,
}

/// Where messages live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// In-process topics, partitions and consumer groups (standalone mode).
    Memory(MemoryConfig),
    /// A Kafka-protocol broker, through librdkafka.
    Kafka(Box<KafkaConfig>),
    /// Redis Streams (Redis 7+): a stream per partition, partitions leased to group members
    /// (docs/mq.md says what this engine keeps of Kafka's guarantees).
    Redis(RedisConfig),
}

/// The Redis Streams backend.
///
/// ```
/// use gochat_mq::{Backend, Config, RedisConfig};
/// use gochat_core::Env;
///
/// let config: Config = serde_json::from_str(r#"{
///     "backend": {"redis": {"url": "redis://:s3cret@10.0.0.8:6379", "session_timeout": "10s"}}
/// }"#).unwrap();
/// config.validate().unwrap();
/// assert!(!format!("{config:?}").contains("s3cret"), "the password stays out of Debug");
/// let Backend::Redis(redis) = config.backend else { unreachable!() };
/// assert_eq!(redis.partitions, RedisConfig::for_env(Env::Production).partitions);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// A standalone (or sentinel, `redis-sentinel://`) Redis 7+. Default:
    /// `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prefix of every key the backend writes. Default: `gochat:mq`.
    pub prefix: String,
    /// Partitions of a topic created on first use (a send to a topic nobody created, e.g. a
    /// dead-letter topic). Default: 4.
    pub partitions: u32,
    /// Entries kept per partition, roughly (`XADD … MAXLEN ~`): older ones are dropped,
    /// consumed or not, as Kafka's retention would. Default: 1,000,000.
    pub retention: u64,
    /// A member that has not renewed its membership and partition leases for this long is
    /// out of its group; its partitions go to the others, from their committed offsets.
    /// Default: 6 s (development), 10 s (production).
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How often a member renews its leases, rebalances and refreshes its lag; also the
    /// longest a read blocks. Default: 500 ms.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Bound on connecting and on each command; above `heartbeat_interval`. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Messages written in one pipeline at most. Default: 1,024.
    pub batch_size: usize,
    /// Messages waiting for the writer at most; `send_nowait` beyond it is
    /// [`Error::QueueFull`](crate::Error::QueueFull). Default: 100,000.
    pub queue_size: usize,
}

/// The in-process broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// Providers in one process with the same name share one broker. Default: `default`.
    pub name: String,
    /// Partitions of a topic created on first use. Default: 4.
    pub partitions: u32,
    /// Records kept per partition; older ones are dropped, consumed or not, as Kafka's
    /// retention would. Default: 100,000.
    pub retention: usize,
    /// Bytes kept per partition (keys, values, header names and values), like Kafka's
    /// `retention.bytes`: the oldest records are dropped, consumed or not, to stay under it;
    /// the newest record is always kept. Records every group has committed past are dropped
    /// anyway. Default: 16 MiB.
    pub retention_bytes: usize,
}

/// Delivery guarantee asked of the broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Acks {
    /// Fire and forget (`acks=0`).
    #[serde(rename = "0")]
    None,
    /// The partition leader has it (`acks=1`).
    #[serde(rename = "1")]
    Leader,
    /// Every in-sync replica has it (`acks=all`).
    #[serde(rename = "all")]
    All,
}

/// Batch compression. Only the codecs built into librdkafka without extra C libraries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// None.
    None,
    /// LZ4.
    Lz4,
    /// Snappy.
    Snappy,
}

/// The Kafka backend. Every field is applied to librdkafka.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`. Default: `127.0.0.1:9092`.
    pub brokers: Vec<String>,
    /// Reported to the broker. Default: `gochat`.
    pub client_id: String,
    /// Default: `1` (development), `all` (production).
    pub acks: Acks,
    /// Exactly-once per partition from the producer (no duplicates on retry). Needs
    /// `acks=all`. Default: false (development), true (production).
    pub idempotence: bool,
    /// Default: none (development), lz4 (production).
    pub compression: Compression,
    /// How long the producer waits to fill a batch. Default: 5 ms.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// Largest batch in bytes. Default: 1 MiB.
    pub batch_size: usize,
    /// How long a send may take, retries included, before it fails. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// A consumer silent this long is out of its group. Default: 10 s (development), 30 s
    /// (production).
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Bound on metadata and topic administration requests. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Replicas of each topic [`Admin`](crate::Admin) creates. Default: 1 (development), 3
    /// (production).
    pub replication_factor: u16,
    /// How often consumer lag is refreshed. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// Other librdkafka properties, passed through: `security.protocol`, `sasl.*`, `ssl.*`.
    /// Values of names containing `password`, `secret` or `key` are hidden from `Debug`.
    pub properties: BTreeMap<String, String>,
}

/// How a consumer handles messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Handlers running at the same time, over all partitions. Default: 8.
    pub concurrency: usize,
    /// Handlers running at the same time within one partition, for messages of different
    /// keys: messages of one key — and all messages without a key — are still handled one
    /// at a time in partition order, and only offsets before every unfinished message are
    /// committed. 1 handles each partition strictly in order. Default: 1.
    pub per_partition: usize,
    /// The most messages a batch handler ([`crate::Consumer::subscribe_batch`]) gets at once:
    /// a partition's worker hands over what waits in its queue, up to this many. A batch
    /// handler takes each partition a batch at a time, in order; `per_partition` does not
    /// apply to it. Default: 256.
    pub max_batch: usize,
    /// Retries of a failed handler before the message is dead-lettered. Default: 3.
    pub max_retries: u32,
    /// First retry delay; doubles per retry. Default: 100 ms.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Largest retry delay. Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_backoff_max: Duration,
    /// Dead letters of topic `t` go to `t` + this. Default: `.dlq`.
    pub dead_letter_suffix: String,
    /// How often handled offsets are committed; also on rebalance and shutdown. Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Messages fetched ahead per partition; a full partition is paused. Default: 256.
    pub buffer: usize,
    /// Where a group without a committed offset starts. Default: earliest.
    pub start: Start,
    /// How long a shutdown waits for handlers in flight; what is not done by then is not
    /// committed and will be delivered again. Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// This process's lasting name among its groups' members (static membership): a process
    /// killed and started again under the same name takes its partitions back at once, with
    /// no rebalance (Kafka: `group.instance.id` = `{instance_id}.{group}`, KIP-345; Redis
    /// Streams: the member id, whose leases it still holds). Unique per live process — a
    /// pod's or slot's name, never a random one — and one subscription per group per
    /// process. On Kafka a static member does not leave on shutdown: its partitions wait for
    /// its return or for the session timeout. Default: none (members join and leave
    /// dynamically); the in-process broker has no use for it.
    pub instance_id: Option<String>,
}

/// Where a new consumer group starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Start {
    /// The oldest retained message.
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

impl Default for Config {
    fn default() -> Self {
        Self::for_env(Env::Development)
    }
}

impl Config {
    /// Development: in-process broker. Production: Kafka on localhost with `acks=all`,
    /// idempotence and lz4.
    pub fn for_env(env: Env) -> Self {
        let backend = match env {
            Env::Development => Backend::Memory(MemoryConfig::default()),
            Env::Production => Backend::Kafka(Box::new(KafkaConfig::for_env(env))),
        };
        Self {
            backend,
            consumer: ConsumerConfig::default(),
        }
    }

    /// Checks every field; `new` calls it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.backend {
            Backend::Memory(memory) => memory.validate()?,
            Backend::Kafka(kafka) => kafka.validate()?,
            Backend::Redis(redis) => redis.validate()?,
        }
        self.consumer.validate("consumer")
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self::named("default")
    }
}

impl MemoryConfig {
    /// A broker shared by providers of this name in this process.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            partitions: 4,
            retention: 100_000,
            retention_bytes: 16 << 20,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new("backend.memory.name", "must not be empty"));
        }
        if self.partitions == 0 {
            return Err(ConfigError::new(
                "backend.memory.partitions",
                "must be at least 1",
            ));
        }
        if self.retention == 0 {
            return Err(ConfigError::new(
                "backend.memory.retention",
                "must be at least 1",
            ));
        }
        if self.retention_bytes == 0 {
            return Err(ConfigError::new(
                "backend.memory.retention_bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self::for_env(Env::Production)
    }
}

impl KafkaConfig {
    /// The seeds' settings for `env`, local broker: development `acks=1`; production
    /// `acks=all`, idempotent, lz4.
    pub fn for_env(env: Env) -> Self {
        let (acks, idempotence, compression, session, replication_factor) = match env {
            Env::Development => (Acks::Leader, false, Compression::None, 10, 1),
            Env::Production => (Acks::All, true, Compression::Lz4, 30, 3),
        };
        Self {
            brokers: vec!["127.0.0.1:9092".to_owned()],
            client_id: "gochat".to_owned(),
            acks,
            idempotence,
            compression,
            linger: Duration::from_millis(5),
            batch_size: 1 << 20,
            delivery_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(session),
            request_timeout: Duration::from_secs(5),
            replication_factor,
            stats_interval: Duration::from_secs(5),
            properties: BTreeMap::new(),
        }
    }

    /// Kafka at `brokers` (comma-separated), other fields for `env`.
    pub fn with_brokers(env: Env, brokers: &str) -> Self {
        Self {
            brokers: brokers.split(',').map(|b| b.trim().to_owned()).collect(),
            ..Self::for_env(env)
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let field = |name: &str| format!("backend.kafka.{name}");
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(ConfigError::new(
                field("brokers"),
                "must list at least one host:port",
            ));
        }
        if let Some(bad) = self.brokers.iter().find(|b| {
            b.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            return Err(ConfigError::new(
                field("brokers"),
                format!("{bad} is not host:port"),
            ));
        }
        if self.idempotence && self.acks != Acks::All {
            return Err(ConfigError::new(
                field("idempotence"),
                "needs acks = \"all\"",
            ));
        }
        if self.replication_factor == 0 {
            return Err(ConfigError::new(
                field("replication_factor"),
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::new(field("batch_size"), "must be at least 1"));
        }

        for (name, value) in [
            ("delivery_timeout", self.delivery_timeout),
            ("session_timeout", self.session_timeout),
            ("request_timeout", self.request_timeout),
            ("stats_interval", self.stats_interval),
        ] {
            if value < Duration::from_millis(1) {
                return Err(ConfigError::new(field(name), "must be at least 1 ms"));
            }
        }
        if let Some(name) = self
            .properties
            .keys()
            .find(|name| OWNED.contains(&name.as_str()))
        {
            return Err(ConfigError::new(
                format!("backend.kafka.properties.{name}"),
                "is set by the kit (use the typed field or the consumer config)",
            ));
        }
        Ok(())
    }
}

/// librdkafka properties the kit sets itself; passing them through would break its guarantees.
const OWNED: [&str; 9] = [
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "partitioner",
    "acks",
    "enable.idempotence",
];

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(name, value)| {
                let secret = ["password", "secret", "key"]
                    .iter()
                    .any(|s| name.contains(s));
                (name.as_str(), if secret { "***" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("client_id", &self.client_id)
            .field("acks", &self.acks)
            .field("idempotence", &self.idempotence)
            .field("compression", &self.compression)
            .field("linger", &self.linger)
            .field("batch_size", &self.batch_size)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("session_timeout", &self.session_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("replication_factor", &self.replication_factor)
            .field("stats_interval", &self.stats_interval)
            .field("properties", &properties)
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self::for_env(Env::Production)
    }
}

impl RedisConfig {
    /// Redis on localhost, with the session timeout for `env`.
    pub fn for_env(env: Env) -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            prefix: "gochat:mq".to_owned(),
            partitions: 4,
            retention: 1_000_000,
            session_timeout: Duration::from_secs(match env {
                Env::Development => 6,
                Env::Production => 10,
            }),
            heartbeat_interval: Duration::from_millis(500),
            command_timeout: Duration::from_secs(5),
            batch_size: 1024,
            queue_size: 100_000,
        }
    }

    /// Redis at `url`, other fields for `env`.
    pub fn with_url(env: Env, url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ..Self::for_env(env)
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let field = |name: &str| format!("backend.redis.{name}");
        if fred::types::config::Config::from_url(&self.url).is_err() {
            return Err(ConfigError::new(
                field("url"),
                format!("{} is not a Redis URL", gochat_core::redact_url(&self.url)),
            ));
        }
        if self.prefix.is_empty() {
            return Err(ConfigError::new(field("prefix"), "must not be empty"));
        }
        for (name, value) in [
            ("partitions", u64::from(self.partitions)),
            ("retention", self.retention),
            ("batch_size", self.batch_size as u64),
            ("queue_size", self.queue_size as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field(name), "must be at least 1"));
            }
        }
        if self.heartbeat_interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                field("heartbeat_interval"),
                "must be at least 10 ms",
            ));
        }
        if self.session_timeout < self.heartbeat_interval * 3 {
            return Err(ConfigError::new(
                field("session_timeout"),
                "must be at least three heartbeat intervals",
            ));
        }
        if self.command_timeout <= self.heartbeat_interval {
            return Err(ConfigError::new(
                field("command_timeout"),
                "must be above heartbeat_interval (a read blocks up to one heartbeat)",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &gochat_core::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("partitions", &self.partitions)
            .field("retention", &self.retention)
            .field("session_timeout", &self.session_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("command_timeout", &self.command_timeout)
            .field("batch_size", &self.batch_size)
            .field("queue_size", &self.queue_size)
            .finish()
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            per_partition: 1,
            max_batch: 256,
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(5),
            dead_letter_suffix: ".dlq".to_owned(),
            commit_interval: Duration::from_secs(1),
            buffer: 256,
            start: Start::Earliest,
            shutdown_grace: Duration::from_secs(30),
            instance_id: None,
        }
    }
}

impl ConsumerConfig {
    /// Checks every field, naming them under `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        if self.concurrency == 0 {
            return Err(ConfigError::new(field("concurrency"), "must be at least 1"));
        }
        if self.buffer == 0 {
            return Err(ConfigError::new(field("buffer"), "must be at least 1"));
        }
        if self.per_partition == 0 {
            return Err(ConfigError::new(
                field("per_partition"),
                "must be at least 1",
            ));
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new(field("max_batch"), "must be at least 1"));
        }
        if let Some(id) = &self.instance_id {
            // Kafka's rule for a group.instance.id (the group name is appended to it).
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if id.is_empty() || id.len() > 200 || !id.chars().all(legal) {
                return Err(ConfigError::new(
                    field("instance_id"),
                    "must be 1 to 200 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
                ));
            }
        }
        if self.dead_letter_suffix.is_empty() {
            return Err(ConfigError::new(
                field("dead_letter_suffix"),
                "must not be empty (dead letters would loop back into the topic)",
            ));
        }
        if self.commit_interval.is_zero() {
            return Err(ConfigError::new(
                field("commit_interval"),
                "must be above zero",
            ));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(ConfigError::new(
                field("retry_backoff_max"),
                "must not be below retry_backoff",
            ));
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1-based): `retry_backoff` doubled per retry,
    /// capped at `retry_backoff_max`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_backoff
            .saturating_mul(factor)
            .min(self.retry_backoff_max)
    }
}

gochat_core::impl_settings!(Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let mut config = Config::for_env(Env::Production);
        let Backend::Kafka(kafka) = &mut config.backend else {
            panic!("production uses Kafka")
        };
        kafka.brokers = vec!["no-port".to_owned()];
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "backend.kafka.brokers", "{err}");

        let mut config = Config::for_env(Env::Production);
        let Backend::Kafka(kafka) = &mut config.backend else {
            panic!("production uses Kafka")
        };
        kafka.acks = Acks::Leader;
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.kafka.idempotence"
        );

        let mut config = Config::for_env(Env::Production);
        let Backend::Kafka(kafka) = &mut config.backend else {
            panic!("production uses Kafka")
        };
        kafka
            .properties
            .insert("enable.auto.commit".into(), "true".into());
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.kafka.properties.enable.auto.commit"
        );

        for (id, ok) in [
            ("im-logic-0", true),
            ("", false),
            ("a b", false),
            ("pod/1", false),
        ] {
            let mut config = Config::for_env(Env::Development);
            config.consumer.instance_id = Some(id.to_owned());
            match config.validate() {
                Ok(()) => assert!(ok, "{id:?} accepted"),
                Err(err) => {
                    assert!(!ok, "{id:?} refused: {err}");
                    assert_eq!(err.field, "consumer.instance_id");
                }
            }
        }

        let mut config = Config::for_env(Env::Development);
        config.consumer.dead_letter_suffix.clear();
        assert_eq!(
            config.validate().unwrap_err().field,
            "consumer.dead_letter_suffix"
        );

        let mut memory = MemoryConfig::named("m");
        memory.retention_bytes = 0;
        let config = Config {
            backend: Backend::Memory(memory),
            ..Config::for_env(Env::Development)
        };
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.memory.retention_bytes"
        );
        let mut redis = RedisConfig::for_env(Env::Development);
        redis.heartbeat_interval = Duration::from_secs(3);
        let config = Config {
            backend: Backend::Redis(redis),
            ..Config::for_env(Env::Development)
        };
        assert_eq!(
            config.validate().unwrap_err().field,
            "backend.redis.session_timeout"
        );
        let mut redis = RedisConfig::with_url(Env::Development, "no scheme here");
        redis.prefix.clear();
        let config = Config {
            backend: Backend::Redis(redis),
            ..Config::for_env(Env::Development)
        };
        assert_eq!(config.validate().unwrap_err().field, "backend.redis.url");
        let config: Config =
            serde_json::from_str(r#"{"backend": {"memory": {"retention_bytes": 1024}}}"#).unwrap();
        let Backend::Memory(memory) = config.backend else {
            panic!("a memory backend")
        };
        assert_eq!(
            (memory.retention_bytes, memory.retention),
            (1024, 100_000),
            "other fields keep their defaults"
        );

        let err = serde_json::from_str::<Config>(r#"{"consumer": {"retries": 3}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `retries`"), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let consumer = ConsumerConfig::default();
        let ms = |retry| consumer.backoff(retry).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(7), ms(100)],
            [100, 200, 400, 5_000, 5_000]
        );
    }
}
