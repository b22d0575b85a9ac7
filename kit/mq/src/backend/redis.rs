//! Redis Streams (Redis 7+) through fred: a stream per partition, a writer that pipelines
//! sends, and group members that lease partitions ([`member`]).
//!
//! Keys, under the configured prefix `P`:
//! - `P:topics`: hash, topic → partition count.
//! - `P:s:{topic}:{partition}`: the partition's stream. A record's id is `0-(offset+1)`
//!   (`XADD … 0-*`), so offsets are contiguous from 0, as on Kafka.
//! - `P:o:{topic}`: hash, `{partition}:{group}` → the group's committed offset (the next one
//!   to read).
//! - `P:l:{topic}:{partition}:{group}`: the lease of the member owning the partition, with
//!   the session timeout as its expiry.
//! - `P:g:{group}`: sorted set of the group's members, scored by membership expiry.
//!
//! A key hashes to one partition, as on Kafka (murmur2), and one member of a group reads a
//! partition at a time, so per-key order holds within a group.

mod member;
mod scripts;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use fred::{
    error::{Error as FredError, ErrorKind as FredKind},
    interfaces::{ClientLike, HashesInterface, KeysInterface, LuaInterface},
    prelude::{Builder, Client, ReconnectPolicy},
    types::{ClusterHash, CustomCommand, Value, config::Config as FredConfig},
};
use gochat_clog::Logger;
use gochat_core::redact_url;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Error, RedisConfig,
    admin::TopicInfo,
    backend::{
        Member,
        memory::{check_topic, kafka_partition},
    },
    error::Result,
    message::{Delivery, Headers, Message, Received},
    producer::Pending,
};

pub(crate) use member::RedisSource;

/// Field names of a stream entry.
const VALUE: &str = "v";
const KEY: &str = "k";
const TIME: &str = "t";
const HEADER: &str = "h:";

/// Key names under the configured prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn topics(&self) -> String {
        format!("{}:topics", self.prefix)
    }

    fn stream(&self, topic: &str, partition: i32) -> String {
        format!("{}:s:{topic}:{partition}", self.prefix)
    }

    fn offsets(&self, topic: &str) -> String {
        format!("{}:o:{topic}", self.prefix)
    }

    fn lease(&self, topic: &str, partition: i32, group: &str) -> String {
        format!("{}:l:{topic}:{partition}:{group}", self.prefix)
    }

    fn members(&self, group: &str) -> String {
        format!("{}:g:{group}", self.prefix)
    }
}

/// The field of a group's committed offset in its topic's offsets hash.
fn offset_field(partition: i32, group: &str) -> String {
    format!("{partition}:{group}")
}

/// What the client, its writer and its members share.
struct Inner {
    config: RedisConfig,
    client: Client,
    keys: Keys,
    /// Partition counts seen, so a send needs no lookup.
    partitions: Mutex<HashMap<String, u32>>,
    /// Where the next keyless record goes.
    next_partition: AtomicUsize,
    log: Logger,
}

pub(crate) struct RedisClient {
    inner: Arc<Inner>,
    writer: mpsc::Sender<Job>,
}

enum Job {
    Send(Message, oneshot::Sender<Result<Delivery>>),
    Flush(oneshot::Sender<()>),
}

/// A send on its way through the writer.
pub(crate) type RedisWait = oneshot::Receiver<Result<Delivery>>;

impl RedisClient {
    /// Connects and checks that the server answers; starts the writer.
    pub(crate) async fn connect(config: &RedisConfig, log: Logger) -> Result<Self> {
        let client = connect(config).await?;
        let inner = Arc::new(Inner {
            config: config.clone(),
            client,
            keys: Keys {
                prefix: config.prefix.clone(),
            },
            partitions: Mutex::new(HashMap::new()),
            next_partition: AtomicUsize::new(0),
            log,
        });
        let (writer, jobs) = mpsc::channel(config.queue_size);
        tokio::spawn(write(inner.clone(), jobs));
        Ok(Self { inner, writer })
    }

    pub(crate) async fn send(&self, message: Message) -> Result<Delivery> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Send(message, tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    pub(crate) fn send_nowait(&self, message: Message) -> Result<Pending> {
        let (tx, rx) = oneshot::channel();
        match self.writer.try_send(Job::Send(message, tx)) {
            Ok(()) => Ok(Pending::redis(rx)),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Error::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Waits until every send queued before it was written.
    pub(crate) async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Flush(tx))
            .await
            .map_err(|_| Error::Closed)?;
        tokio::time::timeout(self.inner.config.command_timeout * 6, rx)
            .await
            .map_err(|_| Error::Timeout("flushing the Redis writer".to_owned()))?
            .map_err(|_| Error::Closed)
    }

    pub(crate) async fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        check_topic(name, partitions)?;
        let created: bool = self
            .inner
            .client
            .hsetnx(self.inner.keys.topics(), name, partitions)
            .await
            .map_err(|e| map_error(&e, &format!("creating topic {name}")))?;
        if !created {
            return Err(Error::TopicExists(name.to_owned()));
        }
        self.inner.remember(name, partitions);
        Ok(())
    }

    pub(crate) async fn delete_topic(&self, name: &str) -> Result<()> {
        let inner = &self.inner;
        let Some(partitions) = inner.lookup(name).await? else {
            return Err(Error::UnknownTopic(name.to_owned()));
        };
        let mut keys: Vec<String> = (0..partitions)
            .map(|p| inner.keys.stream(name, partition_i32(p)))
            .collect();
        keys.push(inner.keys.offsets(name));
        let pipeline = inner.client.pipeline();
        let doing = format!("deleting topic {name}");
        let _: () = pipeline
            .hdel(inner.keys.topics(), name)
            .await
            .map_err(|e| map_error(&e, &doing))?;
        let _: () = pipeline
            .del(keys)
            .await
            .map_err(|e| map_error(&e, &doing))?;
        let _: Vec<Value> = pipeline.all().await.map_err(|e| map_error(&e, &doing))?;
        inner
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        Ok(())
    }

    pub(crate) async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let all: HashMap<String, u32> = self
            .inner
            .client
            .hgetall(self.inner.keys.topics())
            .await
            .map_err(|e| map_error(&e, "listing topics"))?;
        let mut topics: Vec<TopicInfo> = all
            .into_iter()
            .map(|(name, partitions)| TopicInfo { name, partitions })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    pub(crate) async fn health(&self) -> Result<()> {
        let _: Value = self
            .inner
            .client
            .ping(None)
            .await
            .map_err(|e| map_error(&e, "pinging Redis"))?;
        Ok(())
    }

    pub(crate) async fn subscribe(&self, member: Member) -> Result<RedisSource> {
        RedisSource::join(self.inner.clone(), member).await
    }
}

/// A fred client on `config`, connected.
async fn connect(config: &RedisConfig) -> Result<Client> {
    let fred_config = FredConfig::from_url(&config.url).map_err(|e| {
        Error::Config(gochat_core::ConfigError::new(
            "backend.redis.url",
            e.details().to_owned(),
        ))
    })?;
    let client = Builder::from_config(fred_config)
        .with_connection_config(|c| {
            c.connection_timeout = config.command_timeout;
            c.internal_command_timeout = config.command_timeout;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = config.command_timeout;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()
        .map_err(|e| map_error(&e, "building the Redis client"))?;
    client.init().await.map_err(|e| {
        Error::Unavailable(format!(
            "connecting to {}: {}",
            redact_url(&config.url),
            e.details()
        ))
    })?;
    Ok(client)
}

fn partition_i32(partition: u32) -> i32 {
    i32::try_from(partition).unwrap_or(i32::MAX)
}

impl Inner {
    fn remember(&self, topic: &str, partitions: u32) {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), partitions);
    }

    fn cached(&self, topic: &str) -> Option<u32> {
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied()
    }

    /// The partition count of `topic`, if it exists.
    async fn lookup(&self, topic: &str) -> Result<Option<u32>> {
        let count: Option<u32> = self
            .client
            .hget(self.keys.topics(), topic)
            .await
            .map_err(|e| map_error(&e, &format!("reading topic {topic}")))?;
        if let Some(count) = count {
            self.remember(topic, count);
        }
        Ok(count)
    }

    /// The partition counts of `topics`, creating the missing ones with the default count
    /// (as a Kafka broker that creates topics on first use).
    async fn resolve(&self, topics: &HashSet<&str>) -> Result<()> {
        let missing: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|t| self.cached(t).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        for topic in &missing {
            let _: () = pipeline
                .hsetnx(self.keys.topics(), *topic, self.config.partitions)
                .await
                .map_err(|e| map_error(&e, "creating topics"))?;
        }
        let _: () = pipeline
            .hmget(self.keys.topics(), missing.clone())
            .await
            .map_err(|e| map_error(&e, "creating topics"))?;
        let mut replies: Vec<Value> = pipeline
            .all()
            .await
            .map_err(|e| map_error(&e, "creating topics"))?;
        if let Some(Value::Array(counts)) = replies.pop() {
            for (topic, count) in missing.iter().zip(counts) {
                if let Some(count) = count.as_u64().and_then(|c| u32::try_from(c).ok()) {
                    self.remember(topic, count);
                }
            }
        }
        Ok(())
    }

    fn partition_for(&self, message: &Message, count: u32) -> i32 {
        let count = usize::try_from(count).unwrap_or(1).max(1);
        let partition = match &message.key {
            Some(key) => kafka_partition(key, count),
            None => self.next_partition.fetch_add(1, Ordering::Relaxed) % count,
        };
        i32::try_from(partition).unwrap_or(0)
    }
}

/// The writer: takes what is queued (up to `batch_size`) and writes it as one pipeline of
/// XADDs, then answers each sender. Ends when the client is dropped.
async fn write(inner: Arc<Inner>, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(inner.config.batch_size);
    while jobs.recv_many(&mut batch, inner.config.batch_size).await > 0 {
        let mut sends = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Send(message, tx) => sends.push((message, tx)),
                Job::Flush(tx) => flushes.push(tx),
            }
        }
        if !sends.is_empty() {
            write_batch(&inner, sends).await;
        }
        for flush in flushes {
            let _ = flush.send(());
        }
    }
}

async fn write_batch(inner: &Inner, sends: Vec<(Message, oneshot::Sender<Result<Delivery>>)>) {
    let topics: HashSet<&str> = sends.iter().map(|(m, _)| m.topic.as_str()).collect();
    if let Err(e) = inner.resolve(&topics).await {
        gochat_clog::warn!(inner.log, error = %e, "sending failed");
        for (_, tx) in sends {
            let _ = tx.send(Err(e.again()));
        }
        return;
    }
    let pipeline = inner.client.pipeline();
    let mut queued = Vec::with_capacity(sends.len());
    for (message, tx) in sends {
        let partition = inner.partition_for(&message, inner.cached(&message.topic).unwrap_or(1));
        let args = xadd_args(inner, &message, partition);
        let xadd = CustomCommand::new_static("XADD", ClusterHash::FirstKey, false);
        match pipeline.custom::<(), Value>(xadd, args).await {
            Ok(()) => queued.push((message.topic, partition, tx)),
            Err(e) => {
                let _ = tx.send(Err(map_error(&e, "queueing a send")));
            }
        }
    }
    let replies: Vec<std::result::Result<Value, FredError>> = pipeline.try_all().await;
    let mut replies = replies.into_iter();
    for (topic, partition, tx) in queued {
        let result = match replies.next() {
            Some(Ok(id)) => id
                .as_str()
                .and_then(|id| offset_of(&id))
                .map(|offset| Delivery {
                    topic,
                    partition,
                    offset,
                })
                .ok_or_else(|| Error::Backend(format!("XADD answered {id:?}"))),
            Some(Err(e)) => Err(map_error(&e, &format!("sending to {topic}"))),
            None => Err(Error::Backend("the pipeline answered too few".to_owned())),
        };
        let _ = tx.send(result);
    }
}

fn xadd_args(inner: &Inner, message: &Message, partition: i32) -> Vec<Value> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut args: Vec<Value> = Vec::with_capacity(10 + 2 * message.headers.len());
    args.extend([
        Value::from(inner.keys.stream(&message.topic, partition)),
        Value::from_static_str("MAXLEN"),
        Value::from_static_str("~"),
        Value::from(i64::try_from(inner.config.retention).unwrap_or(i64::MAX)),
        // Sequence-only ids: the record's offset is its sequence minus one.
        Value::from_static_str("0-*"),
        Value::from_static_str(VALUE),
        Value::Bytes(message.value.clone()),
        Value::from_static_str(TIME),
        Value::from(millis),
    ]);
    if let Some(key) = &message.key {
        args.extend([Value::from_static_str(KEY), Value::Bytes(key.clone())]);
    }
    for (name, value) in message.headers.iter() {
        args.push(Value::from(format!("{HEADER}{name}")));
        args.push(Value::Bytes(Bytes::copy_from_slice(value)));
    }
    args
}

/// The offset of entry id `0-N`.
fn offset_of(id: &str) -> Option<i64> {
    let (_, sequence) = id.split_once('-')?;
    sequence.parse::<i64>().ok().map(|s| s - 1)
}

/// A stream entry (`[id, [field, value, …]]`) of `topic`'s `partition` as a message.
fn received(topic: &str, partition: i32, entry: Value) -> Option<Received> {
    let Value::Array(mut entry) = entry else {
        return None;
    };
    let (Some(Value::Array(fields)), Some(id)) = (entry.pop(), entry.pop()) else {
        return None;
    };
    let offset = offset_of(&id.as_str()?)?;
    let mut message = Received {
        topic: topic.to_owned(),
        partition,
        offset,
        key: None,
        value: Bytes::new(),
        headers: Headers::default(),
        timestamp: None,
        attempt: 0,
    };
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let name = name.as_str()?;
        let value = match value {
            Value::Bytes(bytes) => bytes,
            Value::String(text) => text.into_inner(),
            other => Bytes::copy_from_slice(other.as_bytes().unwrap_or_default()),
        };
        match name.as_ref() {
            VALUE => message.value = value,
            KEY => message.key = Some(value),
            TIME => {
                message.timestamp = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
            }
            other => {
                if let Some(header) = other.strip_prefix(HEADER) {
                    message.headers.insert(header, value);
                }
            }
        }
    }
    Some(message)
}

/// Runs `script` (small: sent whole, Redis caches it compiled).
async fn eval(
    client: &Client,
    script: &'static str,
    keys: Vec<String>,
    args: Vec<Value>,
    doing: &str,
) -> Result<Value> {
    client
        .eval(script, keys, args)
        .await
        .map_err(|e| map_error(&e, doing))
}

/// Names the fred error in our terms.
fn map_error(error: &FredError, doing: &str) -> Error {
    let details = error.details();
    match error.kind() {
        FredKind::Timeout => Error::Timeout(format!("{doing}: {details}")),
        FredKind::IO | FredKind::Canceled | FredKind::Cluster | FredKind::Sentinel => {
            Error::Unavailable(format!("{doing}: {details}"))
        }
        FredKind::Config | FredKind::Url => Error::Config(gochat_core::ConfigError::new(
            "backend.redis.url",
            details.to_owned(),
        )),
        _ => Error::Backend(format!("{doing}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_entry_sequences_minus_one() {
        assert_eq!(offset_of("0-1"), Some(0));
        assert_eq!(offset_of("0-42"), Some(41));
        assert_eq!(offset_of("nonsense"), None);
    }

    #[test]
    fn an_entry_becomes_a_message() {
        let entry = Value::Array(vec![
            Value::from("0-3"),
            Value::Array(vec![
                Value::from("v"),
                Value::Bytes(Bytes::from_static(b"hello")),
                Value::from("t"),
                Value::from("1000"),
                Value::from("k"),
                Value::from("user-1"),
                Value::from("h:traceparent"),
                Value::from("00-abc-def-01"),
                Value::from("h:n"),
                Value::from("1"),
                Value::from("h:n"),
                Value::from("2"),
            ]),
        ]);
        let message = received("t", 2, entry).unwrap();
        assert_eq!((message.partition, message.offset), (2, 2));
        assert_eq!(message.value_str(), Some("hello"));
        assert_eq!(message.key_str(), Some("user-1"));
        assert_eq!(message.headers.get_str("n"), Some("2"));
        assert_eq!(message.headers.len(), 3);
        assert_eq!(message.timestamp, Some(UNIX_EPOCH + Duration::from_secs(1)));
        assert!(received("t", 0, Value::Null).is_none());
    }
}
