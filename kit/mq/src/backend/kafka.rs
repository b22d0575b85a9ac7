//! Kafka through librdkafka: a `FutureProducer` for sends, an `AdminClient` for topics, and a
//! `StreamConsumer` per group member with manual commits.
//!
//! Offsets are committed only by the kit (`enable.auto.commit=false`): periodically, in the
//! rebalance callback before partitions are revoked, and at shutdown, each time only what the
//! engine marked done.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use gochat_clog::Logger;
use rdkafka::{
    ClientConfig, ClientContext, Message as _, Offset, Statistics, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{
        BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
    },
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, Headers as _, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _},
    util::Timeout,
};

use crate::{
    Acks, Compression, Error, KafkaConfig, Start,
    admin::TopicInfo,
    backend::{Assignment, Member, memory::check_topic},
    error::Result,
    message::{Delivery, Headers, Message, Received, TopicPartition},
    producer::Pending,
    stats::Counters,
    track::{Offsets, Tracks},
};

pub(crate) struct KafkaClient {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    log: Logger,
}

impl KafkaClient {
    /// Builds the producer and admin client and checks that a broker answers.
    pub(crate) async fn connect(config: &KafkaConfig, log: Logger) -> Result<Self> {
        let producer: FutureProducer = producer_config(config)
            .create()
            .map_err(|e| map_error(e, "creating the producer"))?;
        let admin: AdminClient<DefaultClientContext> = base_config(config)
            .create()
            .map_err(|e| map_error(e, "creating the admin client"))?;
        let client = Self {
            config: config.clone(),
            producer,
            admin,
            log,
        };
        client.list_topics().await.map_err(|e| {
            Error::Unavailable(format!("no broker of {:?} answers: {e}", config.brokers))
        })?;
        Ok(client)
    }

    pub(crate) async fn send(&self, message: Message) -> Result<Delivery> {
        let record = record(&message);
        let delivered = self
            .producer
            .send(record, Timeout::After(self.config.delivery_timeout))
            .await;
        match delivered {
            Ok(delivery) => Ok(Delivery {
                topic: message.topic,
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((e, _)) => Err(map_error(e, &format!("sending to {}", message.topic))),
        }
    }

    pub(crate) fn send_nowait(&self, message: Message) -> Result<Pending> {
        let record = record(&message);
        match self.producer.send_result(record) {
            Ok(future) => Ok(Pending::kafka(future, message.topic)),
            Err((e, _)) => Err(map_error(e, &format!("sending to {}", message.topic))),
        }
    }

    pub(crate) async fn flush(&self) -> Result<()> {
        let producer = self.producer.clone();
        let timeout = self.config.delivery_timeout;
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .map_err(|e| map_error(e, "flushing the producer"))
    }

    fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.config.request_timeout))
            .operation_timeout(Some(self.config.request_timeout))
    }

    pub(crate) async fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        check_topic(name, partitions)?;
        let count = i32::try_from(partitions)
            .map_err(|_| Error::InvalidArgument(format!("{partitions} partitions is too many")))?;
        let replication = TopicReplication::Fixed(i32::from(self.config.replication_factor));
        let results = self
            .admin
            .create_topics(
                &[NewTopic::new(name, count, replication)],
                &self.admin_options(),
            )
            .await
            .map_err(|e| map_error(e, &format!("creating topic {name}")))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    return Err(Error::TopicExists(name.to_owned()));
                }
                Err((_, code)) => {
                    return Err(Error::Backend(format!("creating topic {name}: {code}")));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn delete_topic(&self, name: &str) -> Result<()> {
        let results = self
            .admin
            .delete_topics(&[name], &self.admin_options())
            .await
            .map_err(|e| map_error(e, &format!("deleting topic {name}")))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((
                    _,
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                )) => {
                    return Err(Error::UnknownTopic(name.to_owned()));
                }
                Err((_, code)) => {
                    return Err(Error::Backend(format!("deleting topic {name}: {code}")));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let producer = self.producer.clone();
        let timeout = self.config.request_timeout;
        let metadata =
            tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
                .await
                .map_err(|e| Error::Backend(e.to_string()))?
                .map_err(|e| map_error(e, "reading topic metadata"))?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none() && !topic.name().starts_with("__"))
            .map(|topic| TopicInfo {
                name: topic.name().to_owned(),
                partitions: u32::try_from(topic.partitions().len()).unwrap_or(u32::MAX),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    pub(crate) async fn subscribe(&self, member: Member) -> Result<KafkaSource> {
        let mut config = base_config(&self.config);
        config
            .set("group.id", &member.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                match member.start {
                    Start::Earliest => "earliest",
                    Start::Latest => "latest",
                },
            )
            .set("session.timeout.ms", millis(self.config.session_timeout))
            .set("statistics.interval.ms", millis(self.config.stats_interval));
        if let Some(instance) = &member.instance {
            config.set("group.instance.id", format!("{instance}.{}", member.group));
        }
        let context = GroupContext {
            tracks: member.tracks,
            assignment: member.assignment,
            counters: member.counters,
            log: self.log.clone(),
            group: member.group.clone(),
        };
        let consumer: StreamConsumer<GroupContext> = config
            .create_with_context(context)
            .map_err(|e| map_error(e, "creating the consumer"))?;
        let topics: Vec<&str> = member.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| map_error(e, &format!("subscribing to {topics:?}")))?;
        Ok(KafkaSource {
            consumer: Arc::new(consumer),
        })
    }
}

fn base_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", config.brokers.join(","))
        .set("client.id", &config.client_id);
    for (name, value) in &config.properties {
        client.set(name, value);
    }
    client
}

fn producer_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = base_config(config);
    client
        .set(
            "acks",
            match config.acks {
                Acks::None => "0",
                Acks::Leader => "1",
                Acks::All => "all",
            },
        )
        .set("enable.idempotence", config.idempotence.to_string())
        .set(
            "compression.type",
            match config.compression {
                Compression::None => "none",
                Compression::Lz4 => "lz4",
                Compression::Snappy => "snappy",
            },
        )
        .set("linger.ms", millis(config.linger))
        .set("batch.size", config.batch_size.to_string())
        .set("message.timeout.ms", millis(config.delivery_timeout))
        // Java-compatible key hashing: a key lands where a Java producer would put it.
        .set("partitioner", "murmur2_random");
    client
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// librdkafka copies the record when it is enqueued; the borrow ends with the call.
fn record(message: &Message) -> FutureRecord<'_, [u8], [u8]> {
    let record = FutureRecord::to(&message.topic)
        .payload(&message.value[..])
        .headers(owned_headers(&message.headers));
    match &message.key {
        Some(key) => record.key(&key[..]),
        None => record,
    }
}

fn owned_headers(headers: &Headers) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |owned, (key, value)| {
            owned.insert(Header {
                key,
                value: Some(value),
            })
        },
    )
}

/// Names the librdkafka error in our terms.
pub(crate) fn map_error(error: KafkaError, doing: &str) -> Error {
    let code = error.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::QueueFull) => Error::QueueFull,
        Some(
            RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::OperationTimedOut,
        ) => Error::Timeout(format!("{doing}: {error}")),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            Error::UnknownTopic(format!("{doing}: {error}"))
        }
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition,
        ) => Error::Unavailable(format!("{doing}: {error}")),
        _ => match error {
            KafkaError::ClientConfig(_, reason, name, _) => Error::Config(
                gochat_core::ConfigError::new(format!("backend.kafka.properties.{name}"), reason),
            ),
            KafkaError::ClientCreation(reason) => {
                Error::Config(gochat_core::ConfigError::new("backend.kafka", reason))
            }
            other => Error::Backend(format!("{doing}: {other}")),
        },
    }
}

/// A group member's view of Kafka: rebalance callbacks commit what is done before partitions
/// go, statistics give the lag.
struct GroupContext {
    tracks: Arc<Tracks>,
    assignment: Assignment,
    counters: Arc<Counters>,
    log: Logger,
    group: String,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values())
            // Assigned partitions whose end is known. Before the group's first commit
            // librdkafka reports no lag (-1); then everything from the log start counts.
            .filter(|p| p.partition >= 0 && p.desired && p.hi_offset >= 0)
            .map(|p| {
                let committed = if p.committed_offset >= 0 {
                    p.committed_offset
                } else {
                    p.lo_offset.max(0)
                };
                (p.hi_offset - committed).max(0)
            })
            .sum();
        self.counters
            .lag
            .store(u64::try_from(lag).unwrap_or(0), Ordering::Relaxed);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let tps = topic_partitions(revoked);
        let done = self.tracks.revoke(&tps);
        if !done.is_empty()
            && let Err(e) = consumer.commit(&offsets_list(&done), CommitMode::Sync)
        {
            gochat_clog::warn!(self.log, group = self.group, error = %e, "commit before revocation failed; those messages will be delivered again");
        }
        self.assignment.update(|owned| {
            tps.iter().for_each(|tp| {
                owned.remove(tp);
            });
        });
        gochat_clog::debug!(
            self.log,
            group = self.group,
            partitions = tps.len(),
            "partitions revoked"
        );
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            let tps = topic_partitions(assigned);
            gochat_clog::debug!(
                self.log,
                group = self.group,
                partitions = tps.len(),
                "partitions assigned"
            );
            self.assignment.update(|owned| owned.extend(tps));
        }
    }
}

fn topic_partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| TopicPartition::new(e.topic(), e.partition()))
        .collect()
}

fn offsets_list(offsets: &Offsets) -> TopicPartitionList {
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for (tp, next) in offsets {
        // Only fails for an offset kind we never pass.
        let _ = list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next));
    }
    list
}

pub(crate) struct KafkaSource {
    consumer: Arc<StreamConsumer<GroupContext>>,
}

impl KafkaSource {
    pub(crate) async fn next(&mut self) -> Result<Received> {
        let message = self
            .consumer
            .recv()
            .await
            .map_err(|e| map_error(e, "fetching"))?;
        let mut headers = Headers::default();
        if let Some(borrowed) = message.headers() {
            for header in borrowed.iter() {
                headers.insert(
                    header.key,
                    header.value.map(Bytes::copy_from_slice).unwrap_or_default(),
                );
            }
        }
        Ok(Received {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(Bytes::copy_from_slice),
            value: message
                .payload()
                .map(Bytes::copy_from_slice)
                .unwrap_or_default(),
            headers,
            timestamp: message
                .timestamp()
                .to_millis()
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            attempt: 0,
        })
    }

    pub(crate) async fn commit(&self, offsets: &Offsets, wait: bool) -> Result<()> {
        let list = offsets_list(offsets);
        if !wait {
            return self
                .consumer
                .commit(&list, CommitMode::Async)
                .map_err(|e| map_error(e, "committing"));
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|e| Error::Backend(e.to_string()))?
            .map_err(|e| map_error(e, "committing"))
    }

    fn one(tp: &TopicPartition) -> TopicPartitionList {
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition(&tp.topic, tp.partition);
        list
    }

    pub(crate) fn pause(&mut self, tp: &TopicPartition) {
        // Fails only for a partition no longer assigned, whose messages are dropped anyway.
        let _ = self.consumer.pause(&Self::one(tp));
    }

    pub(crate) fn resume(&mut self, tp: &TopicPartition) {
        let _ = self.consumer.resume(&Self::one(tp));
    }

    /// Leaves the group. librdkafka's close blocks, so it runs off the async threads.
    pub(crate) async fn close(self) {
        let consumer = self.consumer;
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    }
}

/// A send in flight.
pub(crate) type DeliveryWait = DeliveryFuture;
