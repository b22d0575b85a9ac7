//! The backends, dispatched by enums: the broker client (send, admin, health) and a
//! group member's message source (fetch, pause, commit, leave).

pub(crate) mod kafka;
pub(crate) mod memory;
pub(crate) mod redis;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, PoisonError},
};

use gochat_clog::Logger;

use crate::{
    admin::{Retained, TopicInfo},
    error::Result,
    message::{Delivery, Message, Received, TopicPartition},
    producer::Pending,
    stats::Counters,
    track::{Offsets, Tracks},
};

pub(crate) enum Client {
    Memory(Arc<memory::Broker>),
    Kafka(Box<kafka::KafkaClient>),
    Redis(redis::RedisClient),
}

impl Client {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Kafka(_) => "kafka",
            Self::Redis(_) => "redis",
        }
    }

    /// Sends `message`; what the in-process broker's retention drops for it is counted in
    /// `counters` and logged through `log`.
    pub(crate) async fn send(
        &self,
        message: Message,
        counters: &Counters,
        log: &Logger,
    ) -> Result<Delivery> {
        match self {
            Self::Memory(broker) => broker.append(message, counters, log),
            Self::Kafka(kafka) => kafka.send(message).await,
            Self::Redis(redis) => redis.send(message).await,
        }
    }

    /// As [`Client::send`], without waiting for the broker.
    pub(crate) fn send_nowait(
        &self,
        message: Message,
        counters: &Counters,
        log: &Logger,
    ) -> Result<Pending> {
        match self {
            Self::Memory(broker) => Ok(Pending::ready(broker.append(message, counters, log))),
            Self::Kafka(kafka) => kafka.send_nowait(message),
            Self::Redis(redis) => redis.send_nowait(message),
        }
    }

    /// What the in-process broker keeps of `topic`; `None` on the others.
    pub(crate) fn retained(&self, topic: &str) -> Option<Vec<Retained>> {
        match self {
            Self::Memory(broker) => broker.retained(topic),
            Self::Kafka(_) | Self::Redis(_) => None,
        }
    }

    pub(crate) async fn flush(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Kafka(kafka) => kafka.flush().await,
            Self::Redis(redis) => redis.flush().await,
        }
    }

    pub(crate) async fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        match self {
            Self::Memory(broker) => broker.create_topic(name, partitions),
            Self::Kafka(kafka) => kafka.create_topic(name, partitions).await,
            Self::Redis(redis) => redis.create_topic(name, partitions).await,
        }
    }

    pub(crate) async fn delete_topic(&self, name: &str) -> Result<()> {
        match self {
            Self::Memory(broker) => broker.delete_topic(name),
            Self::Kafka(kafka) => kafka.delete_topic(name).await,
            Self::Redis(redis) => redis.delete_topic(name).await,
        }
    }

    pub(crate) async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        match self {
            Self::Memory(broker) => Ok(broker.list_topics()),
            Self::Kafka(kafka) => kafka.list_topics().await,
            Self::Redis(redis) => redis.list_topics().await,
        }
    }

    pub(crate) async fn health(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Kafka(kafka) => kafka.list_topics().await.map(drop),
            Self::Redis(redis) => redis.health().await,
        }
    }

    /// Joins `group` as a new member reading `topics`.
    pub(crate) async fn subscribe(&self, member: Member) -> Result<Source> {
        match self {
            Self::Memory(broker) => Ok(Source::Memory(broker.join(member))),
            Self::Kafka(kafka) => Ok(Source::Kafka(kafka.subscribe(member).await?)),
            Self::Redis(redis) => Ok(Source::Redis(redis.subscribe(member).await?)),
        }
    }

    pub(crate) async fn close(&self) {
        let _ = self.flush().await;
    }
}

/// What a backend needs to make a group member.
pub(crate) struct Member {
    pub(crate) group: String,
    pub(crate) topics: Vec<String>,
    pub(crate) start: crate::Start,
    /// Its lasting name, for static membership.
    pub(crate) instance: Option<String>,
    pub(crate) tracks: Arc<Tracks>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) assignment: Assignment,
}

/// The partitions a member owns now, as its backend last said.
#[derive(Clone, Debug, Default)]
pub(crate) struct Assignment(Arc<Mutex<BTreeSet<TopicPartition>>>);

impl Assignment {
    pub(crate) fn get(&self) -> Vec<TopicPartition> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut BTreeSet<TopicPartition>)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

pub(crate) enum Source {
    Memory(memory::MemberSource),
    Kafka(kafka::KafkaSource),
    Redis(redis::RedisSource),
}

impl Source {
    /// The next message of an owned partition. Cancellation-safe.
    pub(crate) async fn next(&mut self) -> Result<Received> {
        match self {
            Self::Memory(member) => member.next().await,
            Self::Kafka(kafka) => kafka.next().await,
            Self::Redis(redis) => redis.next().await,
        }
    }

    /// Commits `offsets` (the next offset to read, per partition); `wait` for the broker.
    pub(crate) async fn commit(&self, offsets: Offsets, wait: bool) -> Result<()> {
        match self {
            Self::Memory(member) => {
                member.commit(&offsets);
                Ok(())
            }
            Self::Kafka(kafka) => kafka.commit(&offsets, wait).await,
            // A script call either way: always waited for.
            Self::Redis(redis) => redis.commit(&offsets).await,
        }
    }

    pub(crate) fn pause(&mut self, tp: &TopicPartition) {
        match self {
            Self::Memory(member) => member.pause(tp),
            Self::Kafka(kafka) => kafka.pause(tp),
            Self::Redis(redis) => redis.pause(tp),
        }
    }

    pub(crate) fn resume(&mut self, tp: &TopicPartition) {
        match self {
            Self::Memory(member) => member.resume(tp),
            Self::Kafka(kafka) => kafka.resume(tp),
            Self::Redis(redis) => redis.resume(tp),
        }
    }

    /// Leaves the group.
    pub(crate) async fn close(self) {
        match self {
            Self::Memory(member) => member.leave(),
            Self::Kafka(kafka) => kafka.close().await,
            Self::Redis(redis) => redis.close().await,
        }
    }
}
