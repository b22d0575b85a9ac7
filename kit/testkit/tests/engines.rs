//! Smoke test of the real engines `scripts/engines up` provides: each one answers in its own
//! protocol, and the Kafka-protocol broker gives consumer groups what at-least-once needs.
//!
//! Run alone with `scripts/engines smoke`.

mod common;

use std::time::Duration;

use gochat_testkit::{Engine, Fixture, block_on, endpoint};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{CommitMode, Consumer, StreamConsumer},
    producer::{FutureProducer, FutureRecord},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

/// Generous bounds so a hang fails instead of blocking CI; never a speed assertion.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn redis_answers_ping() {
    block_on(async {
        let Some(url) = endpoint(Engine::Redis).await else {
            return;
        };
        assert_eq!(common::redis_command(&url, &["PING"]).await, "+PONG\r\n");
    });
}

#[test]
fn the_redis_cluster_covers_every_slot() {
    block_on(async {
        let Some(url) = endpoint(Engine::RedisCluster).await else {
            return;
        };
        let info = common::redis_command(&url, &["CLUSTER", "INFO"]).await;
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    });
}

#[test]
fn the_sentinel_knows_the_master() {
    block_on(async {
        let Some(url) = endpoint(Engine::RedisSentinel).await else {
            return;
        };
        let reply =
            common::redis_command(&url, &["SENTINEL", "get-master-addr-by-name", "gochat"]).await;
        assert!(
            reply.contains("127.0.0.1") && reply.contains("6379"),
            "{reply}"
        );
    });
}

#[test]
fn etcd_reports_healthy() {
    block_on(async {
        let Some(endpoints) = endpoint(Engine::Etcd).await else {
            return;
        };
        let first = endpoints.split(',').next().unwrap();
        let addr = first.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(r#""health":"true""#), "{reply}");
    });
}

#[test]
fn postgres_speaks_its_protocol() {
    block_on(async {
        let Some(url) = endpoint(Engine::Postgres).await else {
            return;
        };
        let mut stream = connect_url(&url).await;
        // SSLRequest: length 8, code 80877103. A PostgreSQL server answers 'S' or 'N'.
        stream
            .write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
            .await
            .unwrap();
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).await.unwrap();
        assert!(matches!(&answer, b"S" | b"N"), "not PostgreSQL: {answer:?}");
    });
}

#[test]
fn mysql_sends_its_handshake() {
    block_on(async {
        let Some(url) = endpoint(Engine::Mysql).await else {
            return;
        };
        let mut stream = connect_url(&url).await;
        // The server speaks first: a packet header (4 bytes), then protocol version 10.
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(head[4], 10, "not a MySQL-protocol handshake: {head:?}");
    });
}

/// At-least-once needs this: a consumer that joins a group resumes exactly at the offset the
/// group committed — also when that offset falls inside a batch of several records.
#[test]
fn kafka_group_resumes_from_committed_offset_inside_a_batch() {
    block_on(async {
        let Some(brokers) = endpoint(Engine::Kafka).await else {
            return;
        };
        let fx = Fixture::new("kafka_group_resume", "kafka");
        let topic = fx.name("resume");
        let group = fx.name("group");
        create_topic(&brokers, &topic).await;

        // Five records sent together with a linger, so the producer puts them in one batch.
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("linger.ms", "200")
            .create()
            .unwrap();
        let sends = (0..5).map(|i| {
            let payload = format!("m{i}");
            let producer = &producer;
            let topic = &topic;
            async move {
                let record = FutureRecord::to(topic).key("k").payload(&payload);
                producer
                    .send(record, PATIENCE)
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap()
            }
        });
        let delivered = futures_util::future::join_all(sends).await;
        let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 4]);

        let first = group_consumer(&brokers, &group, &topic);
        for expected in 0..3 {
            let message = timeout(PATIENCE, first.recv()).await.unwrap().unwrap();
            assert_eq!(message.offset(), expected);
        }
        let mut commit = TopicPartitionList::new();
        commit
            .add_partition_offset(&topic, 0, Offset::Offset(3))
            .unwrap();
        first.commit(&commit, CommitMode::Sync).unwrap();
        drop(first);

        let second = group_consumer(&brokers, &group, &topic);
        let message = timeout(PATIENCE, second.recv())
            .await
            .expect("the second consumer of the group received nothing: the broker did not resume at the committed offset")
            .unwrap();
        assert_eq!(message.offset(), 3, "resumed at the committed offset");
        assert_eq!(message.payload(), Some(&b"m3"[..]));
    });
}

async fn connect_url(url: &str) -> TcpStream {
    let host_port = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit('@').next())
        .expect("a URL of the form scheme://[user@]host:port/...");
    TcpStream::connect(host_port)
        .await
        .expect("connecting to the engine")
}

async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("a Kafka admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("the broker answers CreateTopics");
    for result in results {
        result.expect("the topic is created");
    }
}

fn group_consumer(brokers: &str, group: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("a Kafka consumer");
    consumer.subscribe(&[topic]).expect("subscribing");
    consumer
}
